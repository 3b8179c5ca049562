// Leaderboard page: renders the table from JSON, sorts columns, switches filters.
// Text always goes in through textContent, so a model name is shown, never run.
// What the board is unsure of stays visible: warnings, preliminary models (listed after the
// ranked ones in every sort), unbounded interval sides (∞) and per-model notes.
// The charts are SVG rendered by the server; a filter change fetches them anew.
(function () {
  "use strict";

  const main = document.getElementById("lb-main");
  const form = document.getElementById("lb-filters");
  const table = document.getElementById("lb-table");
  const tbody = table.querySelector("tbody");
  const status = document.getElementById("lb-status");
  const controls = {
    category: document.getElementById("lb-category"),
    style: document.getElementById("lb-style"),
    organization: document.getElementById("lb-organization"),
    license: document.getElementById("lb-license"),
    minVotes: document.getElementById("lb-min-votes"),
  };
  const apiUrl = main.dataset.api;
  const plotsUrl = main.dataset.plots;
  const numeric = new Set([
    "rank", "part", "rating", "interval", "elo", "num_battles", "votes_needed", "mt_bench", "arena_hard",
  ]);
  const optionalColumns = ["part", "elo", "votes_needed", "mt_bench", "arena_hard"];
  const highFirst = ["rating", "elo", "num_battles", "mt_bench", "arena_hard"];
  const NOTES = {
    never_lost: {
      mark: "†",
      text: "Never lost to the rest of its part: nothing bounds its rating from above (∞).",
    },
    never_won: {
      mark: "‡",
      text: "Never won against the rest of its part: nothing bounds its rating from below (−∞).",
    },
    all_ties: {
      mark: "§",
      text: "No decisive battle, only ties: its interval comes from the model, not from wins and losses.",
    },
    regularized: {
      mark: "¶",
      text: "Held finite by a ridge penalty: its rating is not a maximum-likelihood estimate.",
    },
  };
  let state = null;
  let sort = { key: "rank", dir: "ascending" };
  let requestId = 0;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function fillSelect(select, values, selected, allLabel) {
    const previous = selected === undefined ? select.value : selected;
    select.replaceChildren();
    if (allLabel !== undefined) select.append(new Option(allLabel, ""));
    for (const item of values) {
      const value = typeof item === "string" ? item : item.value;
      const label = typeof item === "string" ? item : item.label;
      select.append(new Option(label, value));
    }
    select.value = previous || (allLabel !== undefined ? "" : select.options[0]?.value || "");
  }

  function note(code) {
    return NOTES[code] || { mark: "*", text: code };
  }

  function noteId(code) {
    return `lb-note-${String(code).replace(/[^A-Za-z0-9_-]/g, "_")}`;
  }

  function sortValue(row, key) {
    if (key === "interval") {
      // An unbounded side makes the interval infinitely wide.
      if (row.ci_upper === null || row.ci_lower === null) return Infinity;
      return row.ci_upper - row.ci_lower;
    }
    if (key === "rank") return row.rank; // ranks count within a part: see boardOrder
    return row[key];
  }

  function compareNumbers(x, y) {
    if (x === y) return 0;
    return x < y ? -1 : 1;
  }

  // The board's own order: part, then rank, then rating; preliminary rows have no rank.
  function boardOrder(a, b) {
    return (
      (a.part || 1) - (b.part || 1) ||
      compareNumbers(a.rank ?? Infinity, b.rank ?? Infinity) ||
      compareNumbers(b.rating ?? -Infinity, a.rating ?? -Infinity) ||
      a.model.localeCompare(b.model)
    );
  }

  function sortedRows(rows) {
    const factor = sort.dir === "ascending" ? 1 : -1;
    return rows.slice().sort((a, b) => {
      // Preliminary models come after the ranked ones whichever way the table is sorted.
      if (a.preliminary !== b.preliminary) return a.preliminary ? 1 : -1;
      const x = sortValue(a, sort.key);
      const y = sortValue(b, sort.key);
      let cmp = 0;
      if (sort.key === "rank" || sort.key === "part") cmp = boardOrder(a, b);
      else if (x === null || x === undefined || y === null || y === undefined) {
        // Missing values go last in both directions.
        if (x !== y) return x === null || x === undefined ? 1 : -1;
      } else if (numeric.has(sort.key)) cmp = compareNumbers(x, y);
      else cmp = String(x).localeCompare(String(y), undefined, { sensitivity: "base" });
      if (cmp === 0) return boardOrder(a, b);
      return cmp * factor;
    });
  }

  function fixed(value, digits) {
    return value === null || value === undefined ? "—" : value.toFixed(digits);
  }

  function intervalCell(row) {
    const plus = row.ci_upper === null ? "∞" : fixed(row.ci_upper - row.rating, 1);
    const minus = row.ci_lower === null ? "∞" : fixed(row.rating - row.ci_lower, 1);
    const cell = el("td", `+${plus} / -${minus}`, "num");
    const low = row.ci_lower === null ? "−∞" : row.ci_lower.toFixed(1);
    const high = row.ci_upper === null ? "∞" : row.ci_upper.toFixed(1);
    cell.title = `${low} to ${high}`;
    return cell;
  }

  function eloCell(row) {
    if (row.elo === null || row.elo === undefined) return el("td", "—", "num");
    const low = row.elo_lower === null || row.elo_lower === undefined ? "−∞" : row.elo_lower.toFixed(0);
    const high = row.elo_upper === null || row.elo_upper === undefined ? "∞" : row.elo_upper.toFixed(0);
    const cell = el("td", `${row.elo.toFixed(0)} (${low}–${high})`, "num");
    cell.title = `Online Elo ${row.elo.toFixed(1)}, interval ${low} to ${high}`;
    return cell;
  }

  function modelCell(row) {
    const cell = el("th");
    cell.scope = "row";
    cell.append(el("span", row.model, "lb-model"));
    for (const code of row.notes || []) {
      const { mark, text } = note(code);
      const link = el("a", mark, "lb-note-mark");
      link.href = `#${noteId(code)}`;
      link.title = text;
      link.setAttribute("aria-label", text);
      cell.append(link);
    }
    return cell;
  }

  function arenaHardCell(row) {
    if (row.arena_hard === null || row.arena_hard === undefined) return el("td", "—", "num");
    const low = row.arena_hard_lower ?? null;
    const high = row.arena_hard_upper ?? null;
    const bounds = low !== null && high !== null ? ` (${low.toFixed(1)}–${high.toFixed(1)})` : "";
    const cell = el("td", `${row.arena_hard.toFixed(1)}%${bounds}`, "num");
    const baseline = state.judge?.arena_hard_baseline;
    cell.title = `Win rate against ${baseline || "the baseline"}` + (bounds ? `, interval${bounds}` : "");
    return cell;
  }

  function columns() {
    const judge = state.judge || {};
    return { ...(state.columns || {}), mt_bench: !!judge.mt_bench, arena_hard: !!judge.arena_hard };
  }

  function renderTable() {
    tbody.replaceChildren();
    const shown = columns();
    let previousPreliminary = false;
    for (const row of sortedRows(state.models)) {
      const tr = el("tr", null, row.preliminary ? "lb-preliminary" : "");
      if (row.preliminary && !previousPreliminary) tr.classList.add("lb-first-preliminary");
      previousPreliminary = row.preliminary;
      if (row.preliminary) {
        const label = el("td", "Preliminary", "lb-preliminary-label");
        label.title = `Fewer than ${state.min_battles} battles: not ranked`;
        tr.append(label);
      } else tr.append(el("td", row.rank, "num"));
      if (shown.part) tr.append(el("td", row.part, "num"));
      tr.append(modelCell(row));
      tr.append(el("td", fixed(row.rating, 1), "num"));
      tr.append(intervalCell(row));
      if (shown.elo) tr.append(eloCell(row));
      tr.append(el("td", row.num_battles.toLocaleString(), "num"));
      if (shown.votes_needed) {
        const needed = row.votes_needed;
        tr.append(el("td", needed === null || needed === undefined ? "—" : needed.toLocaleString(), "num"));
      }
      if (shown.mt_bench) tr.append(el("td", fixed(row.mt_bench, 2), "num"));
      if (shown.arena_hard) tr.append(arenaHardCell(row));
      tr.append(el("td", row.organization || "—"));
      tr.append(el("td", row.license || "—"));
      tbody.append(tr);
    }
    for (const key of optionalColumns) {
      table.querySelector(`thead th[data-key="${key}"]`).hidden = !shown[key];
    }
    for (const th of table.querySelectorAll("thead th")) {
      th.setAttribute("aria-sort", th.dataset.key === sort.key ? sort.dir : "none");
    }
  }

  function renderMeta() {
    const style = document.getElementById("lb-style-section");
    const list = document.getElementById("lb-style-list");
    list.replaceChildren();
    const coefs = Object.entries(state.style_coefficients || {});
    style.hidden = coefs.length === 0;
    for (const [name, c] of coefs) {
      const low = c.lower === null ? "−∞" : fixed(c.lower, 3);
      const high = c.upper === null ? "∞" : fixed(c.upper, 3);
      const bounds = c.lower !== undefined ? ` (${low} to ${high})` : "";
      list.append(el("li", `${name}: ${fixed(c.value, 3)}${bounds}`));
    }
    const counts = state.meta.counts || {};
    document.getElementById("lb-meta").textContent =
      `${(counts.battles_rated ?? 0).toLocaleString()} battles` +
      ` · snapshot ${state.snapshot} · computed ${state.created}`;
    renderMethod();
    renderWarnings();
    renderFootnotes();
    status.textContent =
      `Showing ${state.models.length} of ${state.total_models} models — ${state.category_label}` +
      (state.style_control ? " with style control" : "");
  }

  function percent(confidence) {
    return `${Math.round(confidence * 1000) / 10}%`;
  }

  function renderMethod() {
    const method = state.meta.method || {};
    const parts = [];
    if (method.ties) parts.push(method.ties === "davidson" ? "ties: Davidson model" : "ties: half a win each");
    if (method.ci) {
      const level = typeof method.confidence === "number" ? `${percent(method.confidence)} ` : "";
      let ci = `${level}${method.ci === "sandwich" ? "sandwich (model-based)" : "bootstrap"} intervals`;
      if (method.ci === "bootstrap" && method.rounds) ci += ` over ${method.rounds} rounds`;
      if (method.simultaneous) {
        const how = method.simultaneous === "chi2" ? "chi-squared" : method.simultaneous === "bonferroni" ? "Bonferroni" : method.simultaneous;
        ci += `, simultaneous for all models (${how})`;
      } else if ("simultaneous" in method) ci += ", one model at a time";
      parts.push(ci);
    }
    if ("reweight" in method) {
      parts.push(method.reweight === "ipw" ? "votes reweighted by inverse sampling probability" : "votes not reweighted");
    }
    if (method.style_normalization) parts.push(`style normalisation: ${method.style_normalization}`);
    const line = document.getElementById("lb-method");
    line.textContent = parts.length ? `Method: ${parts.join(" · ")}.` : "";
    line.hidden = parts.length === 0;
    document.getElementById("lb-ci-label").textContent =
      typeof method.confidence === "number" ? `${percent(method.confidence)} CI` : "CI";
  }

  function renderWarnings() {
    const warnings = state.warnings || [];
    const list = document.getElementById("lb-warnings-list");
    list.replaceChildren(...warnings.map((w) => el("li", w)));
    document.getElementById("lb-warnings").hidden = warnings.length === 0;
  }

  function renderFootnotes() {
    const counts = state.meta.counts || {};
    const method = state.meta.method || {};
    const preliminary = document.getElementById("lb-preliminary-note");
    preliminary.hidden = !(state.models.some((r) => r.preliminary) || counts.preliminary > 0);
    preliminary.textContent =
      `Models with fewer than ${state.min_battles.toLocaleString()} battles are preliminary: ` +
      "they are listed after the ranked models and have no rank.";
    const parts = document.getElementById("lb-parts-note");
    parts.hidden = !columns().part;
    parts.textContent =
      `The models form ${state.parts} groups (parts) that share no battles: ranks are computed ` +
      "within each part, and ratings only compare inside one part.";
    const votes = document.getElementById("lb-votes-needed-note");
    votes.hidden = !columns().votes_needed;
    const width = typeof method.votes_needed_width === "number" ? ` of ${method.votes_needed_width}` : "";
    votes.textContent = `Votes needed: more battles a model needs for its interval to shrink to the target width${width}.`;
    const judge = state.judge || {};
    const judgeNote = document.getElementById("lb-judge-note");
    const judged = [];
    if (judge.mt_bench) judged.push("MT-Bench: mean score (1–10) an LLM judge gave the model's answers");
    if (judge.arena_hard) {
      judged.push(
        `Arena-Hard: ${judge.arena_hard_style ? "style-controlled " : ""}win rate against ` +
          `${judge.arena_hard_baseline || "the baseline"} as an LLM judge saw it, with its interval`,
      );
    }
    judgeNote.hidden = judged.length === 0;
    judgeNote.textContent = judged.length
      ? `${judged.join("; ")}. These come from arena judge reports, not from votes.`
      : "";
    const list = document.getElementById("lb-notes");
    const codes = [...new Set(state.models.flatMap((r) => r.notes || []))];
    list.replaceChildren(
      ...codes.map((code) => {
        const { mark, text } = note(code);
        const item = el("li", `${mark} ${text}`);
        item.id = noteId(code);
        return item;
      }),
    );
    list.hidden = codes.length === 0;
  }

  function renderControls() {
    fillSelect(
      controls.category,
      state.categories.map((c) => ({ value: c.name, label: c.label })),
      state.category,
    );
    const current = state.categories.find((c) => c.name === state.category);
    const modes = current ? current.style_control : [false];
    for (const option of controls.style.options) {
      option.disabled = !modes.includes(option.value === "true");
    }
    controls.style.value = state.style_control ? "true" : "false";
    fillSelect(controls.organization, state.organizations, state.filters.organization || "", "All");
    fillSelect(controls.license, state.licenses, state.filters.license || "", "All");
    controls.minVotes.value = String(state.filters.min_votes || 0);
  }

  function render() {
    renderControls();
    renderTable();
    renderMeta();
  }

  function query() {
    const params = new URLSearchParams();
    params.set("category", controls.category.value);
    let style = controls.style.value === "true";
    const cat = state.categories.find((c) => c.name === controls.category.value);
    if (cat && !cat.style_control.includes(style)) style = cat.style_control[0] ?? false;
    params.set("style_control", String(style));
    if (controls.organization.value) params.set("organization", controls.organization.value);
    if (controls.license.value) params.set("license", controls.license.value);
    const minVotes = Math.max(0, parseInt(controls.minVotes.value, 10) || 0);
    if (minVotes) params.set("min_votes", String(minVotes));
    return params;
  }

  async function reload() {
    const params = query();
    const id = ++requestId;
    status.textContent = "Loading…";
    try {
      const response = await fetch(`${apiUrl}?${params}`, { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (id !== requestId) return; // a newer request superseded this one
      if (!response.ok) {
        status.textContent = body?.error?.message || `Error ${response.status}`;
        return;
      }
      state = body;
      render();
      history.replaceState(null, "", `${location.pathname}?${params}`);
      reloadPlots(params, id);
    } catch (err) {
      if (id === requestId) status.textContent = "Could not load the leaderboard. Try again.";
    }
  }

  // The charts come as an HTML fragment of server-rendered SVG; parsed, never run.
  async function reloadPlots(params, id) {
    const current = document.getElementById("lb-plots");
    if (!current || !plotsUrl) return;
    current.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(`${plotsUrl}?${params}`, { headers: { Accept: "text/html" } });
      if (!response.ok || id !== requestId) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById("lb-plots");
      if (fresh && id === requestId) current.replaceWith(document.adoptNode(fresh));
    } catch (err) {
      // The table is current; the previous charts stay until the next change.
    } finally {
      current.removeAttribute("aria-busy");
    }
  }

  function onSort(event) {
    const th = event.target.closest("th");
    if (!th || !state) return;
    const key = th.dataset.key;
    if (sort.key === key) sort.dir = sort.dir === "ascending" ? "descending" : "ascending";
    else sort = { key, dir: highFirst.includes(key) ? "descending" : "ascending" };
    renderTable();
  }

  const initial = JSON.parse(document.getElementById("lb-data").textContent);
  if (!initial) return;
  state = initial;
  render();
  for (const button of table.querySelectorAll("thead button")) button.addEventListener("click", onSort);
  form.addEventListener("change", reload);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  document.documentElement.dataset.ready = "true";
})();
