// The red-team game page (/redteam): pick a challenge, play a round against an anonymous
// model through /api/redteam, see each answer checked, and learn the model at the end.
// The round id is kept in sessionStorage, so a reload resumes the round. Model text is only
// inserted with textContent while it streams; its HTML comes from the server (the round
// view's answer_html), already rendered from markdown and sanitized, and goes in place
// through answer_html.js. Needs common.js, api_errors.js, answer_html.js, event_stream.js
// and redteam_text.js (the game's words).
"use strict";

(function () {
  const { t, tn, request, showHtml, readEvents } = window.Arena;
  const { ERRORS, TURN_FAILED, describeTarget, clockText, verdictItem, fillOutcome } =
    window.Arena.RedTeamText;

  const root = document.getElementById("redteam");
  if (!root) return;
  const apiBase = root.dataset.api;
  const STORAGE_KEY = "arena.redteam.round";
  const $ = (id) => document.getElementById(id);

  const notices = $("rt-notices");
  const pick = $("rt-pick");
  const roundBox = $("rt-round");
  const title = $("rt-round-title");
  const target = $("rt-target");
  const clock = $("rt-clock");
  const turnsMeter = $("rt-turns");
  const log = $("rt-log");
  const outcome = $("rt-outcome");
  const status = $("rt-status");
  const form = $("rt-composer");
  const prompt = $("rt-prompt");
  const sendBtn = $("rt-send");
  const giveUpBtn = $("rt-give-up");
  const newRoundBtn = $("rt-new-round");
  const nickForm = $("rt-player");
  const nickInput = $("rt-nickname");
  const nickStatus = $("rt-nickname-status");

  let view = null; // the round view from the API
  let busy = false;
  let deadline = 0; // performance.now() at which the round's time runs out
  let ticker = null;
  let expiring = false;

  function wording(err, notFound) {
    if (err.status === 404 && notFound) return notFound;
    return ERRORS[err.code] || err.message;
  }

  function notice(text, kind) {
    const p = document.createElement("p");
    p.className = "notice" + (kind ? " notice-" + kind : "");
    p.textContent = text;
    notices.appendChild(p);
  }

  async function call(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return (await request(apiBase + path, method, headers, payload)).json();
  }

  // --- how long the round has left -------------------------------------------------------

  function active() {
    return !!view && view.status === "active";
  }

  function tick() {
    if (!active()) return;
    const left = (deadline - performance.now()) / 1000;
    clock.textContent = clockText(left);
    clock.classList.toggle("rt-low", left < 30);
    if (left <= 0 && !busy) expire();
  }

  // The time is up by this page's clock: the server ends the round when it is next read.
  async function expire() {
    if (expiring || !view) return;
    expiring = true;
    try {
      const fresh = await call("GET", "/rounds/" + view.round_id);
      if (fresh.status === "active") deadline = performance.now() + fresh.seconds_left * 1000 + 500;
      show(fresh);
    } catch (err) {
      notice(wording(err, t("This round is no longer available. Press New round to play again.")), "error");
    } finally {
      expiring = false;
    }
  }

  function updateMeters() {
    if (active()) {
      clock.textContent = clockText((deadline - performance.now()) / 1000);
      turnsMeter.textContent = tn("%(n)s turn left", "%(n)s turns left", view.turns_left);
    } else {
      clock.textContent = t("Round over");
      clock.classList.remove("rt-low");
      turnsMeter.textContent = tn("%(n)s turn used", "%(n)s turns used", view.turns_used);
    }
  }

  function setBusy(value) {
    busy = value;
    const open = active() && !value;
    sendBtn.disabled = !open;
    prompt.disabled = !active() || value;
    giveUpBtn.disabled = !open;
    root.setAttribute("aria-busy", value ? "true" : "false");
  }

  // --- the conversation -------------------------------------------------------------------

  function bubble(role, text) {
    const li = document.createElement("li");
    li.className = "msg msg-" + role;
    if (text !== undefined) li.textContent = text;
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  function answerHtml(li, html) {
    li.classList.remove("streaming");
    li.removeAttribute("aria-busy");
    if (html) showHtml(li, html); // server-rendered markdown, sanitized with nh3
    else li.textContent = t("(no answer)");
  }

  function verdict(success, method, judge) {
    const li = verdictItem(success, method, judge);
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  function renderTurns(turns) {
    log.replaceChildren();
    for (const turn of turns) {
      bubble("user", turn.prompt);
      answerHtml(bubble("assistant"), turn.answer_html);
      verdict(turn.success, turn.method, turn.judge);
    }
  }

  // --- showing a round --------------------------------------------------------------------

  function show(v, options) {
    const wasActive = active();
    view = v;
    if (options && options.rebuild) renderTurns(v.turns || []);
    title.textContent = v.challenge.title || v.challenge.id || "";
    target.textContent = describeTarget(v.challenge);
    if (v.status === "active") {
      if (!options || options.rebuild || options.resetClock) {
        deadline = performance.now() + v.seconds_left * 1000;
      }
      clearOutcome();
      if (!ticker) ticker = setInterval(tick, 250);
    } else {
      if (ticker) { clearInterval(ticker); ticker = null; }
      fillOutcome(outcome, v);
      status.textContent = "";
    }
    updateMeters();
    if (pick) pick.hidden = true;
    roundBox.hidden = false;
    giveUpBtn.hidden = !active();
    newRoundBtn.hidden = active();
    form.classList.toggle("rt-over", !active());
    setBusy(busy);
    if (wasActive && !active()) outcome.focus();
  }

  async function resume() {
    const id = sessionStorage.getItem(STORAGE_KEY);
    if (!id) return;
    if (pick) pick.hidden = true;
    try {
      show(await call("GET", "/rounds/" + encodeURIComponent(id)), { rebuild: true });
      if (!active()) outcome.focus();
    } catch (err) {
      sessionStorage.removeItem(STORAGE_KEY);
      if (err.status !== 404) notice(err.message, "error");
      if (pick) pick.hidden = false;
    }
  }

  async function start(button) {
    if (busy) return;
    notices.replaceChildren();
    busy = true;
    button.disabled = true;
    try {
      const v = await call("POST", "/rounds", { challenge_id: button.dataset.start });
      sessionStorage.setItem(STORAGE_KEY, v.round_id);
      busy = false;
      log.replaceChildren();
      status.textContent = t("The round has started: write your first message.");
      show(v, { rebuild: true });
      prompt.focus();
    } catch (err) {
      notice(wording(err, t("This challenge is no longer offered. Reload the page.")), "error");
    } finally {
      busy = false;
      button.disabled = false;
    }
  }

  async function send() {
    const text = prompt.value.trim();
    if (!text || busy || !active()) return;
    notices.replaceChildren();
    setBusy(true);
    const userLi = bubble("user", text);
    const answer = bubble("assistant");
    answer.classList.add("streaming");
    answer.setAttribute("aria-busy", "true");
    prompt.value = "";
    const waiting = t("Waiting for the answer…");
    status.textContent = waiting;
    let failed = false;
    let ended = false;
    try {
      const headers = { "Content-Type": "application/json", "Accept": "text/event-stream" };
      const resp = await request(apiBase + "/rounds/" + view.round_id + "/messages", "POST",
        headers, JSON.stringify({ text }));
      await readEvents(resp, {
        delta(d) { answer.appendChild(document.createTextNode(d.text)); },
        error() {
          failed = true;
          answer.classList.remove("streaming");
          answer.removeAttribute("aria-busy");
          answer.classList.add("msg-error");
          answer.textContent = TURN_FAILED;
        },
        checked(d) { verdict(d.success, d.method, null); },
        judge(d) { verdict(!!d.achieved, "judge", d); },
        round(v) {
          ended = true;
          const turns = v.turns || [];
          const last = turns[turns.length - 1];
          answerHtml(answer, last ? last.answer_html : "");
          show(v);
        },
      });
      if (failed) {
        prompt.value = text;
        status.textContent = "";
      } else if (!ended) {
        throw new Error(t("The answer was cut off. Reload the page to see where the round stands."));
      } else {
        status.textContent = active() ? "" : status.textContent;
      }
    } catch (err) {
      if (!answer.textContent) {
        answer.remove();
        userLi.remove();
        if (!prompt.value) prompt.value = text;
      } else {
        answerHtml(answer, "");
      }
      notice(wording(err, t("This round is no longer available. Press New round to play again.")), "error");
      if (status.textContent === waiting) status.textContent = "";
      if (err.code === "round_over") await expire();
    } finally {
      if (status.textContent === waiting) status.textContent = "";
      setBusy(false);
      if (active()) {
        prompt.focus();
        if (deadline <= performance.now()) expire();
      }
    }
  }

  async function giveUp() {
    if (busy || !active()) return;
    notices.replaceChildren();
    setBusy(true);
    try {
      const v = await call("POST", "/rounds/" + view.round_id + "/end");
      busy = false;
      show(v);
    } catch (err) {
      notice(wording(err, t("This round is no longer available. Press New round to play again.")), "error");
    } finally {
      setBusy(false);
    }
  }

  function clearOutcome() {
    outcome.hidden = true;
    for (const id of ["rt-outcome-title", "rt-outcome-reason", "rt-outcome-model",
      "rt-outcome-secret", "rt-outcome-note"]) $(id).replaceChildren();
  }

  function newRound() {
    sessionStorage.removeItem(STORAGE_KEY);
    if (ticker) { clearInterval(ticker); ticker = null; }
    view = null;
    log.replaceChildren();
    notices.replaceChildren();
    status.textContent = "";
    clearOutcome();
    roundBox.hidden = true;
    if (pick) {
      pick.hidden = false;
      $("rt-pick-title").focus();
    }
  }

  // --- the nickname -----------------------------------------------------------------------

  async function loadNickname() {
    try {
      const player = await call("GET", "/player");
      if (player.nickname && !nickInput.value) nickInput.value = player.nickname;
    } catch (_) { /* the form still works; saving reports any problem */ }
  }

  async function saveNickname() {
    const raw = nickInput.value.trim();
    nickStatus.textContent = "";
    nickStatus.className = "rt-field-status";
    nickInput.removeAttribute("aria-invalid");
    try {
      const player = await call("PUT", "/player", { nickname: raw || null });
      nickInput.value = player.nickname || "";
      nickStatus.textContent = player.nickname
        ? t("Saved: you play as %(name)s.", { name: player.nickname })
        : t("Nickname removed: you play without one.");
      nickStatus.classList.add("rt-ok");
    } catch (err) {
      nickStatus.textContent = wording(err);
      nickStatus.classList.add("rt-error");
      nickInput.setAttribute("aria-invalid", "true");
      nickInput.focus();
    }
  }

  // --- wiring -----------------------------------------------------------------------------

  document.querySelectorAll("button[data-start]").forEach((b) => {
    b.addEventListener("click", () => start(b));
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  giveUpBtn.addEventListener("click", giveUp);
  newRoundBtn.addEventListener("click", newRound);
  nickForm.addEventListener("submit", (e) => { e.preventDefault(); saveNickname(); });
  loadNickname();
  resume();
})();
