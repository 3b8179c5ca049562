// Leaderboard page: renders the table from JSON, sorts columns, switches filters.
// Text always goes in through textContent, so a model name is shown, never run.
// What the board is unsure of stays visible: warnings, preliminary models (listed after the
// ranked ones in every sort), unbounded interval sides (∞) and per-model notes.
// The charts are SVG rendered by the server; a filter change fetches them anew.
// Text the page itself shows comes through common.js's t()/tn() from the page's JSON
// catalog (#arena-i18n, web/i18n.py); the English msgid is the fallback.
(function () {
  "use strict";

  // The page text helpers every page shares (common.js, loaded first).
  const { t, tn } = window.Arena;
  const lang = document.documentElement.lang || "en";

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
      text: t("Never lost to the rest of its part: nothing bounds its rating from above (∞)."),
    },
    never_won: {
      mark: "‡",
      text: t("Never won against the rest of its part: nothing bounds its rating from below (−∞)."),
    },
    all_ties: {
      mark: "§",
      text: t("No decisive battle, only ties: its interval comes from the model, not from wins and losses."),
    },
    regularized: {
      mark: "¶",
      text: t("Held finite by a ridge penalty: its rating is not a maximum-likelihood estimate."),
    },
  };
  // The payload's English comes with codes; these word them in the page's language.
  const CATEGORIES = {
    full: t("Overall"),
    hard_prompts: t("Hard prompts"),
    coding: t("Coding"),
    math: t("Math"),
    instruction_following: t("Instruction following"),
    creative_writing: t("Creative writing"),
    multi_turn: t("Multi-turn"),
    long_query: t("Long query"),
  };
  const STYLE_FEATURES = {
    sum_assistant_tokens: t("Answer length"),
    header_count: t("Headings"),
    list_count: t("List items"),
    bold_count: t("Bold text"),
  };
  const languageNames = (() => {
    try { return new Intl.DisplayNames([lang], { type: "language" }); } catch (_) { return null; }
  })();
  // Each known warning (leaderboard_text.py), worded from its parameters.
  const WARNINGS = {
    preliminary: (p) => tn(
      "%(n)s model has fewer than %(min)s battles: it is listed as preliminary, after the ranked models, without a rank.",
      "%(n)s models have fewer than %(min)s battles: they are listed as preliminary, after the ranked models, without a rank.",
      p.n, { min: p.min_battles }),
    disconnected: (p) => t(
      "The models form %(parts)s parts that share no battles: ratings compare only within a part, and each part is ranked on its own.",
      { parts: p.parts }),
    no_finite_optimum: (p) => {
      let text = t("Some models never lost (or never won) against the rest of their part, so no finite maximum-likelihood rating exists: a ridge of %(ridge)s keeps them finite, and their interval is open on the side the data leave unbounded.", { ridge: p.ridge });
      if (p.never_lost) text += " " + t("Never lost: %(models)s.", { models: p.never_lost });
      if (p.never_won) text += " " + t("Never won: %(models)s.", { models: p.never_won });
      return text;
    },
    ties_only: (p) => tn(
      "%(n)s model has only tied battles: its interval comes from the model (inverse Fisher information), since the data show no spread.",
      "%(n)s models have only tied battles: their intervals come from the model (inverse Fisher information), since the data show no spread.",
      p.n),
    not_converged: (p) => t(
      "The fit stopped after %(iterations)s iterations without converging (largest gradient %(gradient)s).",
      { iterations: p.iterations, gradient: p.gradient }),
    bootstrap_failed: (p) => t("%(failed)s of %(rounds)s bootstrap rounds did not converge.",
      { failed: p.n, rounds: p.rounds }),
    bootstrap_prior: (p) => t(
      "%(count)s of %(rounds)s bootstrap rounds had no finite optimum on their own (too few battles) and were fitted with a prior of precision %(precision)s centred at the full-data ratings.",
      { count: p.n, rounds: p.rounds, precision: p.precision }),
    style_collinear: () => t("The style features are collinear: how the effect splits among them is arbitrary."),
    feature_constant: (p) => t("The style feature %(feature)s is the same in every battle and was left out of the fit.",
      { feature: styleName(p.feature) }),
  };

  function categoryLabel(c) {
    if (!c) return state ? state.category_label : "";
    if (CATEGORIES[c.name]) return CATEGORIES[c.name];
    if (c.language && languageNames) {
      try {
        const name = languageNames.of(c.language);
        if (name && name !== c.language) return name.charAt(0).toLocaleUpperCase(lang) + name.slice(1);
      } catch (_) { /* an odd code: the English label stands */ }
    }
    return c.label;
  }

  function styleName(name) {
    return STYLE_FEATURES[name] || name;
  }

  function warningText(text, index) {
    const coded = (state.warning_codes || [])[index];
    const word = coded && coded.code && WARNINGS[coded.code];
    return word ? word(coded.params || {}) : text;
  }

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
    cell.title = t("%(low)s to %(high)s", { low, high });
    return cell;
  }

  function eloCell(row) {
    if (row.elo === null || row.elo === undefined) return el("td", "—", "num");
    const low = row.elo_lower === null || row.elo_lower === undefined ? "−∞" : row.elo_lower.toFixed(0);
    const high = row.elo_upper === null || row.elo_upper === undefined ? "∞" : row.elo_upper.toFixed(0);
    const cell = el("td", `${row.elo.toFixed(0)} (${low}–${high})`, "num");
    cell.title = t("Online Elo %(elo)s, interval %(low)s to %(high)s", { elo: row.elo.toFixed(1), low, high });
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
    const baseline = state.judge?.arena_hard_baseline || t("the baseline");
    cell.title = bounds
      ? t("Win rate against %(baseline)s, interval%(bounds)s", { baseline, bounds })
      : t("Win rate against %(baseline)s", { baseline });
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
        const label = el("td", t("Preliminary"), "lb-preliminary-label");
        label.title = tn("Fewer than %(n)s battle: not ranked", "Fewer than %(n)s battles: not ranked", state.min_battles);
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
      const bounds = c.lower !== undefined ? " (" + t("%(low)s to %(high)s", { low, high }) + ")" : "";
      list.append(el("li", `${styleName(name)}: ${fixed(c.value, 3)}${bounds}`));
    }
    const counts = state.meta.counts || {};
    document.getElementById("lb-meta").textContent =
      tn("%(n)s battle", "%(n)s battles", counts.battles_rated ?? 0) +
      " · " + t("snapshot %(snapshot)s", { snapshot: state.snapshot }) +
      " · " + t("computed %(created)s", { created: state.created });
    renderMethod();
    renderWarnings();
    renderFootnotes();
    const category = categoryLabel(state.categories.find((c) => c.name === state.category));
    const shown = { shown: state.models.length, total: state.total_models, category };
    status.textContent = state.style_control
      ? t("Showing %(shown)s of %(total)s models — %(category)s with style control", shown)
      : t("Showing %(shown)s of %(total)s models — %(category)s", shown);
  }

  function percent(confidence) {
    return `${Math.round(confidence * 1000) / 10}%`;
  }

  function renderMethod() {
    const method = state.meta.method || {};
    const parts = [];
    if (method.ties) parts.push(method.ties === "davidson" ? t("ties: Davidson model") : t("ties: half a win each"));
    if (method.ci) {
      const level = typeof method.confidence === "number" ? percent(method.confidence) : null;
      const kind = method.ci === "sandwich" ? t("sandwich (model-based)") : t("bootstrap");
      let ci = level === null
        ? t("%(kind)s intervals", { kind })
        : t("%(level)s %(kind)s intervals", { level, kind });
      if (method.ci === "bootstrap" && method.rounds) ci += t(" over %(rounds)s rounds", { rounds: method.rounds });
      if (method.simultaneous) {
        const how = method.simultaneous === "chi2" ? t("chi-squared") : method.simultaneous === "bonferroni" ? "Bonferroni" : method.simultaneous;
        ci += t(", simultaneous for all models (%(how)s)", { how });
      } else if ("simultaneous" in method) ci += t(", one model at a time");
      parts.push(ci);
    }
    if ("reweight" in method) {
      parts.push(method.reweight === "ipw" ? t("votes reweighted by inverse sampling probability") : t("votes not reweighted"));
    }
    if (method.style_normalization) parts.push(t("style normalisation: %(how)s", { how: method.style_normalization }));
    const line = document.getElementById("lb-method");
    line.textContent = parts.length ? t("Method: %(parts)s.", { parts: parts.join(" · ") }) : "";
    line.hidden = parts.length === 0;
    document.getElementById("lb-ci-label").textContent =
      typeof method.confidence === "number" ? t("%(level)s CI", { level: percent(method.confidence) }) : t("CI");
  }

  function renderWarnings() {
    const warnings = state.warnings || [];
    const list = document.getElementById("lb-warnings-list");
    list.replaceChildren(...warnings.map((w, i) => el("li", warningText(w, i))));
    document.getElementById("lb-warnings").hidden = warnings.length === 0;
  }

  function renderFootnotes() {
    const counts = state.meta.counts || {};
    const method = state.meta.method || {};
    const preliminary = document.getElementById("lb-preliminary-note");
    preliminary.hidden = !(state.models.some((r) => r.preliminary) || counts.preliminary > 0);
    preliminary.textContent = tn(
      "Models with fewer than %(n)s battle are preliminary: they are listed after the ranked models and have no rank.",
      "Models with fewer than %(n)s battles are preliminary: they are listed after the ranked models and have no rank.",
      state.min_battles,
    );
    const parts = document.getElementById("lb-parts-note");
    parts.hidden = !columns().part;
    parts.textContent = t(
      "The models form %(parts)s groups (parts) that share no battles: ranks are computed within each part, and ratings only compare inside one part.",
      { parts: state.parts },
    );
    const votes = document.getElementById("lb-votes-needed-note");
    votes.hidden = !columns().votes_needed;
    votes.textContent = typeof method.votes_needed_width === "number"
      ? t("Votes needed: more battles a model needs for its interval to shrink to the target width of %(width)s.", { width: method.votes_needed_width })
      : t("Votes needed: more battles a model needs for its interval to shrink to the target width.");
    const judge = state.judge || {};
    const judgeNote = document.getElementById("lb-judge-note");
    const judged = [];
    if (judge.mt_bench) judged.push(t("MT-Bench: mean score (1–10) an LLM judge gave the model's answers"));
    if (judge.arena_hard) {
      const baseline = judge.arena_hard_baseline || t("the baseline");
      judged.push(judge.arena_hard_style
        ? t("Arena-Hard: style-controlled win rate against %(baseline)s as an LLM judge saw it, with its interval", { baseline })
        : t("Arena-Hard: win rate against %(baseline)s as an LLM judge saw it, with its interval", { baseline }));
    }
    judgeNote.hidden = judged.length === 0;
    judgeNote.textContent = judged.length
      ? t("%(notes)s. These come from arena judge reports, not from votes.", { notes: judged.join("; ") })
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
      state.categories.map((c) => ({ value: c.name, label: categoryLabel(c) })),
      state.category,
    );
    const current = state.categories.find((c) => c.name === state.category);
    const modes = current ? current.style_control : [false];
    for (const option of controls.style.options) {
      option.disabled = !modes.includes(option.value === "true");
    }
    controls.style.value = state.style_control ? "true" : "false";
    fillSelect(controls.organization, state.organizations, state.filters.organization || "", t("All"));
    fillSelect(controls.license, state.licenses, state.filters.license || "", t("All"));
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

  // An error answer worded from its code and field (the API's own text is English); the
  // server's text only for a code this page does not know.
  function errorText(httpStatus, err, params) {
    const code = err?.code;
    if (code === "not_found" && err.param === "category") {
      return params.get("style_control") === "true"
        ? t("There is no leaderboard with style control for this category.")
        : t("There is no leaderboard for this category.");
    }
    if (code === "no_leaderboard") return t("No leaderboard has been computed yet.");
    if (code === "invalid_body" || httpStatus === 422) {
      return t("A filter has a value the leaderboard cannot use. Check the filters and try again.");
    }
    return err?.message || t("Error %(status)s", { status: httpStatus });
  }

  async function reload() {
    const params = query();
    const id = ++requestId;
    status.textContent = t("Loading…");
    try {
      const response = await fetch(`${apiUrl}?${params}`, { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (id !== requestId) return; // a newer request superseded this one
      if (!response.ok) {
        status.textContent = errorText(response.status, body?.error, params);
        return;
      }
      state = body;
      render();
      history.replaceState(null, "", `${location.pathname}?${params}`);
      reloadPlots(params, id);
    } catch (err) {
      if (id === requestId) status.textContent = t("Could not load the leaderboard. Try again.");
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
