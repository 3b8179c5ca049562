// The red-team boards (/redteam/leaderboard): players by attack strength, models by
// robustness and challenges by difficulty, read from /api/redteam/leaderboard and shown as
// tables (text only, through textContent). Needs common.js and api_errors.js.
// As on the main leaderboard (leaderboard.js), the JSON's warnings are English sentences and
// warning_codes[i] gives warnings[i]'s code and parameters: the page words each known code in
// its own language (t()/tn()), and shows the English sentence for a code it does not know.
// A member with too few rounds is marked preliminary, and a note under the boards says why.
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
  const preliminaryNote = document.getElementById("rt-preliminary-note");
  // Each known warning (redteam/ratings.py), worded from its parameters.
  const WARNINGS = {
    no_finite_optimum: (p) => t(
      "Some players, models or challenges only ever won or only ever lost, so no finite maximum-likelihood rating exists: a ridge of %(ridge)s keeps them finite, and their interval is open (∞ or −∞) on the side the data leave unbounded.",
      { ridge: typeof p.ridge === "number" ? p.ridge.toLocaleString(lang) : p.ridge }),
  };

  function warningText(text, coded) {
    const word = coded && coded.code && WARNINGS[coded.code];
    return word ? word(coded.params || {}) : String(text);
  }

  function preliminaryLabel(min) {
    return tn("Preliminary: fewer than %(n)s rated round", "Preliminary: fewer than %(n)s rated rounds", min);
  }

  function number(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "—";
    const digits = Math.abs(value) >= 100 ? 0 : 2;
    return value.toLocaleString(lang, { maximumFractionDigits: digits, minimumFractionDigits: digits });
  }

  function count(value) {
    return typeof value === "number" ? value.toLocaleString(lang) : "—";
  }

  function cell(row, text) {
    const el = document.createElement("td");
    el.textContent = text;
    row.appendChild(el);
  }

  // The rank cell: the rank, then (for a preliminary member) a visible mark whose label and
  // the note under the boards say why. The name cell stays the name alone.
  function rankCell(row, e, min) {
    const td = document.createElement("td");
    td.textContent = String(e.rank);
    if (e.preliminary) {
      row.classList.add("rt-row-preliminary");
      const mark = document.createElement("span");
      mark.className = "rt-preliminary";
      // Translators: marks a red-team board member with too few rounds to trust its rank.
      mark.textContent = t("preliminary");
      mark.title = preliminaryLabel(min);
      mark.setAttribute("aria-describedby", "rt-preliminary-note");
      td.append(" ", mark);
    }
    row.appendChild(td);
  }

  function nameCell(row, name) {
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    row.appendChild(th);
  }

  function fillBoard(key, entries, min) {
    const body = root.querySelector('table[data-board="' + key + '"] tbody');
    const none = root.querySelector('[data-board-none="' + key + '"]');
    body.replaceChildren();
    for (const e of entries) {
      const row = document.createElement("tr");
      rankCell(row, e, min);
      nameCell(row, String(e.name));
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
    const codes = data.warning_codes || [];
    warnings.replaceChildren(...(data.warnings || []).map((text, i) => {
      const li = document.createElement("li");
      li.className = "notice";
      const coded = codes[i];
      if (coded && coded.code) li.dataset.code = coded.code;
      li.textContent = warningText(text, coded);
      return li;
    }));
    warnings.hidden = !warnings.children.length;
    if (!data.n_rounds && lists.every((l) => !l.length)) {
      meta.textContent = "";
      empty.hidden = false;
      boards.hidden = true;
      return;
    }
    const min = data.preliminary_rounds || 0;
    BOARDS.forEach((k, i) => fillBoard(k, lists[i], min));
    preliminaryNote.hidden = !lists.some((l) => l.some((e) => e.preliminary));
    preliminaryNote.textContent = tn(
      "Preliminary: fewer than %(n)s rated round, so the rating and rank may still move a lot.",
      "Preliminary: fewer than %(n)s rated rounds, so the rating and rank may still move a lot.",
      min);
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
