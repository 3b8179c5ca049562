// Leaderboard page: renders the table from JSON, sorts columns, switches filters.
// Text always goes in through textContent, so a model name is shown, never run.
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
  const numeric = new Set(["rank", "rating", "interval", "num_battles"]);
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

  function sortValue(row, key) {
    if (key === "interval") return row.ci_upper - row.ci_lower;
    return row[key];
  }

  function sortedRows(rows) {
    const factor = sort.dir === "ascending" ? 1 : -1;
    return rows.slice().sort((a, b) => {
      const x = sortValue(a, sort.key);
      const y = sortValue(b, sort.key);
      let cmp;
      if (numeric.has(sort.key)) cmp = x - y;
      else cmp = String(x ?? "").localeCompare(String(y ?? ""), undefined, { sensitivity: "base" });
      if (cmp === 0) cmp = a.rank - b.rank || b.rating - a.rating;
      return cmp * factor;
    });
  }

  function renderTable() {
    tbody.replaceChildren();
    for (const row of sortedRows(state.models)) {
      const tr = el("tr");
      tr.append(el("td", row.rank, "num"));
      const name = el("th", row.model);
      name.scope = "row";
      tr.append(name);
      tr.append(el("td", row.rating.toFixed(1), "num"));
      const plus = (row.ci_upper - row.rating).toFixed(1);
      const minus = (row.rating - row.ci_lower).toFixed(1);
      const ci = el("td", `+${plus} / -${minus}`, "num");
      ci.title = `${row.ci_lower.toFixed(1)} to ${row.ci_upper.toFixed(1)}`;
      tr.append(ci);
      tr.append(el("td", row.num_battles.toLocaleString(), "num"));
      tr.append(el("td", row.organization || "—"));
      tr.append(el("td", row.license || "—"));
      tbody.append(tr);
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
      const bounds = c.lower !== undefined ? ` (${c.lower.toFixed(3)} to ${c.upper.toFixed(3)})` : "";
      list.append(el("li", `${name}: ${c.value.toFixed(3)}${bounds}`));
    }
    const counts = state.meta.counts || {};
    const method = state.meta.method || {};
    document.getElementById("lb-meta").textContent =
      `${(counts.battles_rated ?? 0).toLocaleString()} battles · ${method.ci || "?"} intervals` +
      ` · snapshot ${state.snapshot} · computed ${state.created}`;
    status.textContent =
      `Showing ${state.models.length} of ${state.total_models} models — ${state.category_label}` +
      (state.style_control ? " with style control" : "");
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
    } catch (err) {
      if (id === requestId) status.textContent = "Could not load the leaderboard. Try again.";
    }
  }

  function onSort(event) {
    const th = event.target.closest("th");
    if (!th || !state) return;
    const key = th.dataset.key;
    if (sort.key === key) sort.dir = sort.dir === "ascending" ? "descending" : "ascending";
    else sort = { key, dir: key === "rating" || key === "num_battles" ? "descending" : "ascending" };
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
