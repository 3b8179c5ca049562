// Arena chat pages (battle, side by side, direct): sending, streaming the answers, voting.
// Model text is only ever inserted with textContent as it streams; its HTML comes from the
// server (``render`` frames while it streams, ``done`` at the end), already rendered from
// markdown and sanitized, and goes in place through answer_html.js. Needs common.js,
// api_errors.js, answer_html.js and event_stream.js loaded before it (window.Arena).
"use strict";

(function () {
  const { t, fill, request, showHtml, readEvents } = window.Arena;
  const { NOTICES, TURN_FAILED, SIDE_ERRORS, LEAK_TEXT } = window.Arena;

  const root = document.getElementById("chat");
  if (!root) return;
  const mode = root.dataset.mode;
  const apiBase = root.dataset.api;
  const sides = mode === "direct" ? ["a"] : ["a", "b"];

  const form = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const imageInput = document.getElementById("image");
  const imageName = document.getElementById("image-name");
  const sendBtn = document.getElementById("send");
  const regenBtn = document.getElementById("regenerate");
  const newRoundBtn = document.getElementById("new-round");
  const notices = document.getElementById("notices");
  const status = document.getElementById("status");
  const dock = document.getElementById("dock");
  const voteArea = document.getElementById("vote-area");
  const voteReveal = document.getElementById("vote-reveal");
  const votebar = document.getElementById("votebar");
  const voteButtons = Array.from(votebar.querySelectorAll("button[data-vote]"));
  const voteKeys = Object.fromEntries(
    voteButtons.map((b) => [b.getAttribute("aria-keyshortcuts"), b]));
  // From this width the whole dock sticks to the bottom of the screen (arena.css).
  const wide = window.matchMedia("(min-width: 720px)");
  const logs = Object.fromEntries(sides.map((s) => [s, document.getElementById("log-" + s)]));

  let battle = null; // {id, ...} from POST /api/battles
  let busy = false;
  let voted = false;
  let answered = false;
  let rated = false; // direct chat: the latest answer has its rating
  let started = false; // a message was sent in this round: the vote area is shown
  let regenerable = false; // a turn with a failed answer takes no vote but a regenerate

  // The name a notice gives a side: its pane's (translated) label.
  function sideLabel(side) {
    if (mode === "direct") return t("The model");
    const label = document.querySelector('[data-side-label="' + side + '"]');
    return label ? label.textContent : side.toUpperCase();
  }

  async function call(method, path, body) {
    const headers = { "Accept": "application/json" };
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    return (await request(apiBase + path, method, headers, payload)).json();
  }

  function notice(text, kind) {
    const p = document.createElement("p");
    p.className = "notice" + (kind ? " notice-" + kind : "");
    p.textContent = text;
    notices.appendChild(p);
    return p;
  }

  function setBusy(value) {
    busy = value;
    sendBtn.disabled = value || voted;
    prompt.disabled = value || voted;
    imageInput.disabled = value || voted;
    regenBtn.disabled = value || voted || !(answered || regenerable);
    root.setAttribute("aria-busy", value ? "true" : "false");
    updateVotes();
  }

  function voteOpen() {
    return !busy && answered && !voted;
  }

  // data-vote on the chat: none (nothing sent yet), waiting, open, or done (voted; rated).
  function updateVotes() {
    const open = voteOpen();
    voteButtons.forEach((b) => { b.disabled = !open; });
    voteArea.hidden = !started;
    root.dataset.vote = !started ? "none" : open ? "open" : (voted || rated) ? "done" : "waiting";
  }

  // The answers have ended and can be voted on: put the buttons in view (on a phone the vote
  // area is sticky now, but may sit above the screen if the page was scrolled past it) and
  // take the focus there, so keys 1-4 vote at once. Direct chat on a wide screen keeps the
  // focus in the message box: chatting on is the usual next step there.
  function presentVote() {
    if (!wide.matches) voteArea.scrollIntoView({ block: "nearest" });
    if (mode === "direct" && wide.matches) prompt.focus();
    else votebar.focus({ preventScroll: true });
  }

  function typingIn(el) {
    return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // Keys 1-4 (1-3 in direct chat) press the vote buttons, unless the user is typing.
  function onShortcut(e) {
    if (e.defaultPrevented || e.repeat || e.isComposing) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (typingIn(e.target) || typingIn(document.activeElement)) return;
    const button = voteKeys[e.key];
    if (!button || button.disabled || !voteOpen()) return;
    e.preventDefault();
    vote(button);
  }

  // The dock covers the bottom of a wide screen: a message scrolled into view clears it
  // (arena.css gives .msg a scroll-margin of --dock-h; not scroll-padding on the page, which
  // would make focusing anything in the dock scroll the page).
  function measureDock() {
    document.documentElement.style.setProperty("--dock-h", dock.offsetHeight + "px");
  }

  function bubble(side, role, text) {
    const li = document.createElement("li");
    li.className = "msg msg-" + role;
    if (text !== undefined) li.textContent = text;
    logs[side].appendChild(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  function addUserMessage(text, file) {
    const made = [];
    for (const side of sides) {
      const li = bubble(side, "user", text);
      if (file) {
        const img = document.createElement("img");
        img.alt = t("Your image: %(name)s", { name: file.name });
        img.src = URL.createObjectURL(file);
        li.appendChild(img);
      }
      made.push(li);
    }
    return made;
  }

  function removeLastAnswers() {
    for (const side of sides) {
      const items = logs[side].querySelectorAll(".msg-assistant");
      if (items.length) items[items.length - 1].remove();
    }
  }

  // The turn's answers, read from its event stream (event_stream.js) as they come.
  // While a side streams, its bubble holds the latest render (.md) and, after it, the raw
  // text that came since (.tail); each render replaces both.
  async function consumeStream(resp) {
    const current = {};
    const parts = {};
    for (const side of sides) {
      const li = bubble(side, "assistant");
      li.classList.add("streaming");
      li.setAttribute("aria-busy", "true");
      const md = document.createElement("div");
      md.className = "md";
      const tail = document.createElement("span");
      tail.className = "tail";
      li.append(md, tail);
      current[side] = li;
      parts[side] = { md, tail };
    }
    const finish = (side) => {
      const li = current[side];
      if (!li) return;
      li.classList.remove("streaming");
      li.removeAttribute("aria-busy");
    };
    const handlers = {
      delta(d) {
        const p = parts[d.side];
        if (p) p.tail.appendChild(document.createTextNode(d.text));
      },
      render(d) {
        const p = parts[d.side];
        if (!p || !p.md.isConnected) return;
        showHtml(p.md, d.html); // the markdown so far, rendered and sanitized with nh3
        p.tail.replaceChildren();
      },
      done(d) {
        const li = current[d.side];
        if (!li) return;
        finish(d.side);
        showHtml(li, d.html); // server-rendered markdown, sanitized with nh3
      },
      error(d) {
        const li = current[d.side];
        const known = SIDE_ERRORS[d.kind];
        const text = known ? fill(known, { label: sideLabel(d.side) }) : d.message;
        if (!li) { notice(d.side ? text : TURN_FAILED, "error"); return; }
        finish(d.side);
        li.classList.add("msg-error");
        li.textContent = text;
      },
      leak(d) { notice(fill(LEAK_TEXT, { label: sideLabel(d.side) }), "error"); },
      end(d) {
        answered = !!d.can_vote;
        regenerable = !!d.can_regenerate;
        if (d.message) status.textContent = NOTICES[d.notice] || d.message;
      },
    };
    await readEvents(resp, handlers);
    for (const side of sides) finish(side);
  }

  function chosenModels() {
    if (mode === "battle") return undefined;
    return sides.map((s) => document.getElementById("model-" + s).value);
  }

  async function ensureBattle(hasImage) {
    if (battle) return battle;
    const body = { mode };
    const models = chosenModels();
    if (models) body.models = models;
    if (hasImage) body.vision = true;
    battle = await call("POST", "/battles", body);
    return battle;
  }

  async function streamTurn(path, body) {
    const headers = { "Content-Type": "application/json", "Accept": "text/event-stream" };
    const resp = await request(apiBase + path, "POST", headers, JSON.stringify(body || {}));
    await consumeStream(resp);
  }

  async function send() {
    const text = prompt.value.trim();
    const file = imageInput.files && imageInput.files[0];
    if (!text || busy || voted) return;
    notices.replaceChildren();
    status.textContent = "";
    setBusy(true);
    let userBubbles = [];
    try {
      await ensureBattle(!!file);
      let imageId = null;
      if (file) {
        const fd = new FormData();
        fd.append("image", file);
        imageId = (await call("POST", "/images", fd)).image_id;
      }
      userBubbles = addUserMessage(text, file);
      prompt.value = "";
      imageInput.value = "";
      imageName.textContent = "";
      answered = false;
      rated = false;
      started = true;
      voteButtons.forEach((b) => b.removeAttribute("aria-pressed"));
      const waiting = t("Waiting for the answers…");
      status.textContent = waiting;
      await streamTurn("/battles/" + battle.battle_id + "/messages", { text, image_id: imageId });
      if (status.textContent === waiting) {
        status.textContent = answered ? votePrompt() : "";
      }
    } catch (err) {
      userBubbles.forEach((li) => li.remove());
      started = sides.some((s) => logs[s].querySelector(".msg-assistant"));
      if (userBubbles.length && !prompt.value) prompt.value = text;
      notice(err.message, "error");
      status.textContent = "";
    } finally {
      setBusy(false);
      if (voteOpen()) presentVote();
      else if (!voted) prompt.focus();
    }
  }

  function votePrompt() {
    if (mode === "direct") {
      return t("Rate the answer (keys 1–3; Esc first if you are typing), or keep chatting.");
    }
    return t("Compare the answers, then vote (keys 1–4) — or keep chatting.");
  }

  async function regenerate() {
    if (!battle || busy || voted) return;
    notices.replaceChildren();
    setBusy(true);
    try {
      removeLastAnswers();
      answered = false;
      status.textContent = t("Regenerating…");
      await streamTurn("/battles/" + battle.battle_id + "/regenerate", {});
      status.textContent = answered ? votePrompt() : "";
    } catch (err) {
      notice(err.message, "error");
      status.textContent = "";
    } finally {
      setBusy(false);
      if (voteOpen()) presentVote();
    }
  }

  // The names go in each pane's title and, right above the vote buttons, in one line that
  // is on screen when the vote is cast (the pane titles may be far above on a phone).
  function showReveal(models) {
    const parts = [];
    for (const side of sides) {
      const info = models && models[side];
      const el = document.querySelector('[data-side-reveal="' + side + '"]');
      if (!info || !el) continue;
      const name = info.demo ? t("%(name)s (demo)", { name: info.name }) : info.name;
      el.textContent = name;
      el.hidden = false;
      const label = document.querySelector('[data-side-label="' + side + '"]');
      const part = document.createElement("span");
      const who = document.createElement("strong");
      who.textContent = name;
      part.append(t("%(label)s: ", { label: label ? label.textContent : side }), who);
      parts.push(part);
    }
    if (!parts.length) return;
    voteReveal.replaceChildren(...parts.flatMap((part, i) => (i ? [" · ", part] : [part])));
    voteReveal.hidden = false;
  }

  async function vote(button) {
    if (!battle || busy) return;
    const choice = button.dataset.vote;
    voteButtons.forEach((b) => { b.disabled = true; });
    try {
      const result = await call("POST", "/battles/" + battle.battle_id + "/vote", { vote: choice });
      button.setAttribute("aria-pressed", "true");
      if (mode === "direct") {
        answered = false; // one rating per answer; the next answer can be rated again
        rated = true;
        status.textContent = t("Thanks for the feedback.");
      } else {
        voted = true;
        showReveal(result.models);
        if (result.counted !== false) {
          status.textContent = t("Thanks! Your vote was recorded. Press New round to battle again.");
        } else if (mode === "battle" && result.leaked) {
          status.textContent = t("Vote recorded, but it will not count toward the leaderboard: an answer revealed which model wrote it.");
        } else {
          // Named side by side: the voter knew the names, so the vote is not anonymous.
          status.textContent = t("Vote recorded. It does not count toward the leaderboard, because you knew the models' names: only anonymous battles are rated.");
        }
        newRoundBtn.focus({ preventScroll: true }); // the vote area stays in view
      }
      if (result.share_url) {
        const share = document.createElement("a");
        share.href = result.share_url;
        share.textContent = t("Share this battle");
        share.target = "_blank";
        share.rel = "noopener";
        status.append(" ", share);
      }
    } catch (err) {
      notice(err.message, "error");
      if (err.status === 409) voted = mode !== "direct";
    } finally {
      setBusy(false);
    }
  }

  function newRound() {
    battle = null;
    voted = false;
    answered = false;
    regenerable = false;
    rated = false;
    started = false;
    voteReveal.hidden = true;
    voteReveal.replaceChildren();
    for (const side of sides) logs[side].replaceChildren();
    document.querySelectorAll("[data-side-reveal]").forEach((el) => {
      el.hidden = true; el.textContent = "";
    });
    voteButtons.forEach((b) => b.removeAttribute("aria-pressed"));
    notices.replaceChildren();
    status.textContent = "";
    setBusy(false);
    prompt.focus();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    // Esc leaves the message box, so that the vote keys work.
    if (e.key === "Escape" && !e.isComposing) {
      if (voteOpen()) votebar.focus({ preventScroll: true }); else prompt.blur();
    }
  });
  document.addEventListener("keydown", onShortcut);
  imageInput.addEventListener("change", () => {
    const f = imageInput.files && imageInput.files[0];
    imageName.textContent = f ? f.name : "";
  });
  regenBtn.addEventListener("click", regenerate);
  newRoundBtn.addEventListener("click", newRound);
  voteButtons.forEach((b) => b.addEventListener("click", () => vote(b)));
  document.querySelectorAll("[data-model-picker]").forEach((sel) => {
    sel.addEventListener("change", () => { if (battle) newRound(); });
  });
  if (window.ResizeObserver) new ResizeObserver(measureDock).observe(dock);
  setBusy(false);
})();
