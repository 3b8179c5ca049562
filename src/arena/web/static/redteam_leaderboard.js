// The red-team boards (/redteam/leaderboard): players by attack strength, models by
// robustness and challenges by difficulty, read from /api/redteam/leaderboard and shown as
// tables (text only, through textContent). Needs common.js and api_errors.js.
"use strict";

(function () {
  const { t, tn, lang, request } = window.Arena;

  const root = document.getElementById("rt-leaderboard");
  if (!root) return;
  const BOARDS = ["players", "models", "challenges"];
  const meta = document.getElementById("rt-board-meta");
  const notices = document.getElementById("rt-board-notices");
  const warnings = document.getElementById("rt-warnings");
  const empty = document.getElementById("rt-board-empty");
  const boards = document.getElementById("rt-boards");

  function number(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "—";
    const digits = Math.abs(value) >= 100 ? 0 : 2;
    return value.toLocaleString(lang, { maximumFractionDigits: digits, minimumFractionDigits: digits });
  }

  function count(value) {
    return typeof value === "number" ? value.toLocaleString(lang) : "—";
  }

  function cell(row, text, header) {
    const el = document.createElement(header ? "th" : "td");
    if (header) el.scope = "row";
    el.textContent = text;
    row.appendChild(el);
  }

  function fillBoard(key, entries) {
    const body = root.querySelector('table[data-board="' + key + '"] tbody');
    const none = root.querySelector('[data-board-none="' + key + '"]');
    body.replaceChildren();
    for (const e of entries) {
      const row = document.createElement("tr");
      cell(row, String(e.rank));
      cell(row, String(e.name), true);
      cell(row, number(e.rating));
      // A null bound is one the data leave open (never won, or never lost): unbounded.
      const lower = e.lower === null ? "−∞" : number(e.lower);
      const upper = e.upper === null ? "∞" : number(e.upper);
      cell(row, lower + " – " + upper);
      cell(row, count(e.rounds));
      cell(row, count(e.successes));
      body.appendChild(row);
    }
    none.hidden = entries.length > 0;
  }

  function describe(data) {
    const parts = [tn("Rated from %(n)s round", "Rated from %(n)s rounds", data.n_rounds || 0)];
    if (typeof data.confidence === "number") {
      const level = data.confidence.toLocaleString(lang, { style: "percent", maximumFractionDigits: 1 });
      parts.push(t("%(level)s confidence intervals", { level }));
    }
    const when = data.computed_at ? new Date(data.computed_at) : null;
    if (when && !Number.isNaN(when.getTime())) {
      parts.push(t("computed %(time)s", { time: when.toLocaleString(lang) }));
    }
    return parts.join(" · ");
  }

  function show(data) {
    const lists = BOARDS.map((k) => (Array.isArray(data[k]) ? data[k] : []));
    warnings.replaceChildren(...(data.warnings || []).map((w) => {
      const li = document.createElement("li");
      li.className = "notice";
      li.textContent = String(w);
      return li;
    }));
    warnings.hidden = !warnings.children.length;
    if (!data.n_rounds && lists.every((l) => !l.length)) {
      meta.textContent = "";
      empty.hidden = false;
      boards.hidden = true;
      return;
    }
    BOARDS.forEach((k, i) => fillBoard(k, lists[i]));
    meta.textContent = describe(data);
    empty.hidden = true;
    boards.hidden = false;
  }

  async function load() {
    try {
      const resp = await request(root.dataset.api, "GET", { "Accept": "application/json" });
      show(await resp.json());
    } catch (err) {
      meta.textContent = "";
      const p = document.createElement("p");
      p.className = "notice notice-error";
      p.textContent = err.status === 404
        ? t("The red-team boards are not available on this server yet.")
        : err.message;
      notices.replaceChildren(p);
    }
  }

  load();
})();
