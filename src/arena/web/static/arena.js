// Arena chat pages (battle, side by side, direct). Plain JS, no dependencies.
// Model text is only ever inserted with textContent while it streams; the final answer's
// HTML comes from the server, already rendered from markdown and sanitized.
"use strict";

(function () {
  const root = document.getElementById("chat");
  if (!root) return;
  const mode = root.dataset.mode;
  const apiBase = root.dataset.api;
  const sides = mode === "direct" ? ["a"] : ["a", "b"];
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  const form = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const imageInput = document.getElementById("image");
  const imageName = document.getElementById("image-name");
  const sendBtn = document.getElementById("send");
  const regenBtn = document.getElementById("regenerate");
  const newRoundBtn = document.getElementById("new-round");
  const notices = document.getElementById("notices");
  const status = document.getElementById("status");
  const voteButtons = Array.from(document.querySelectorAll("#votebar button[data-vote]"));
  const logs = Object.fromEntries(sides.map((s) => [s, document.getElementById("log-" + s)]));

  let battle = null; // {id, ...} from POST /api/battles
  let busy = false;
  let voted = false;
  let answered = false;
  let regenerable = false; // a turn with a failed answer takes no vote but a regenerate

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || "Request failed (HTTP " + status + ").");
      this.status = status;
      this.code = err.code || null;
    }
  }

  async function readError(resp) {
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    return new ApiError(resp.status, body);
  }

  async function call(method, path, body) {
    const headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const resp = await fetch(apiBase + path, {
      method, headers, body: payload, credentials: "same-origin",
    });
    if (!resp.ok) throw await readError(resp);
    return resp.json();
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

  function updateVotes() {
    const open = !busy && answered && !voted;
    voteButtons.forEach((b) => { b.disabled = !open; });
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
        img.alt = "Your image: " + file.name;
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

  // Parse a text/event-stream body from fetch(): events are separated by a blank line.
  async function consumeStream(resp) {
    const current = {};
    for (const side of sides) {
      const li = bubble(side, "assistant");
      li.classList.add("streaming");
      li.setAttribute("aria-busy", "true");
      current[side] = li;
    }
    const finish = (side) => {
      const li = current[side];
      if (!li) return;
      li.classList.remove("streaming");
      li.removeAttribute("aria-busy");
    };
    const handlers = {
      delta(d) { const li = current[d.side]; if (li) li.appendChild(document.createTextNode(d.text)); },
      done(d) {
        const li = current[d.side];
        if (!li) return;
        finish(d.side);
        li.innerHTML = d.html; // server-rendered markdown, sanitized with nh3
      },
      error(d) {
        const li = current[d.side];
        if (!li) { notice(d.message, "error"); return; }
        finish(d.side);
        li.classList.add("msg-error");
        li.textContent = d.message;
      },
      leak(d) { notice(d.message, "error"); },
      end(d) {
        answered = !!d.can_vote;
        regenerable = !!d.can_regenerate;
        if (d.message) status.textContent = d.message;
      },
    };
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of raw.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length || !handlers[event]) continue;
        handlers[event](JSON.parse(data.join("\n")));
      }
    }
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
    const resp = await fetch(apiBase + path, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json",
                 "Accept": "text/event-stream" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    if (!resp.ok) throw await readError(resp);
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
      status.textContent = "Waiting for the answers…";
      await streamTurn("/battles/" + battle.battle_id + "/messages", { text, image_id: imageId });
      if (status.textContent.startsWith("Waiting")) {
        status.textContent = answered ? votePrompt() : "";
      }
    } catch (err) {
      userBubbles.forEach((li) => li.remove());
      if (userBubbles.length && !prompt.value) prompt.value = text;
      notice(err.message, "error");
      status.textContent = "";
    } finally {
      setBusy(false);
      if (!voted) prompt.focus();
    }
  }

  function votePrompt() {
    if (mode === "direct") return "Rate the answer, or keep chatting.";
    return "Compare the answers, then vote — or keep chatting.";
  }

  async function regenerate() {
    if (!battle || busy || voted) return;
    notices.replaceChildren();
    setBusy(true);
    try {
      removeLastAnswers();
      answered = false;
      status.textContent = "Regenerating…";
      await streamTurn("/battles/" + battle.battle_id + "/regenerate", {});
      status.textContent = answered ? votePrompt() : "";
    } catch (err) {
      notice(err.message, "error");
      status.textContent = "";
    } finally {
      setBusy(false);
    }
  }

  function showReveal(models) {
    for (const side of sides) {
      const info = models && models[side];
      const el = document.querySelector('[data-side-reveal="' + side + '"]');
      if (!info || !el) continue;
      el.textContent = info.name + (info.demo ? " (demo)" : "");
      el.hidden = false;
    }
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
        status.textContent = "Thanks for the feedback.";
      } else {
        voted = true;
        showReveal(result.models);
        const flagged = result.counted === false;
        status.textContent = flagged
          ? "Vote recorded, but it will not count: a model revealed its identity."
          : "Thanks! Your vote was recorded. Press New round to battle again.";
        newRoundBtn.focus();
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
  });
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
  setBusy(false);
})();
