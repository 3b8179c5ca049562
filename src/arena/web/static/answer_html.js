// An answer's HTML, put in place and dressed: copy buttons on code blocks and TeX typeset
// by KaTeX (vendored, loaded only when an answer has math). The HTML comes from the server,
// already rendered from markdown and sanitized. Needs common.js; gives window.Arena showHtml.
"use strict";

(function () {
  const Arena = window.Arena;
  const { t } = Arena;
  const scriptUrl = document.currentScript ? document.currentScript.src : "";

  // Vendored libraries sit next to this script (static/vendor/), with its version query.
  function vendorUrl(path) {
    const own = new URL(scriptUrl, document.baseURI);
    return new URL("vendor/" + path + own.search, own).href;
  }

  let katexLoading = null;
  function loadKatex() {
    if (window.katex) return Promise.resolve(window.katex);
    if (!katexLoading) {
      katexLoading = new Promise((resolve, reject) => {
        const css = document.createElement("link");
        css.rel = "stylesheet";
        css.href = vendorUrl("katex/katex.min.css");
        document.head.appendChild(css);
        const js = document.createElement("script");
        js.src = vendorUrl("katex/katex.min.js");
        js.onload = () => resolve(window.katex);
        js.onerror = () => { katexLoading = null; reject(new Error("KaTeX did not load")); };
        document.head.appendChild(js);
      });
    }
    return katexLoading;
  }

  // TeX arrives as text in .math-inline/.math-display (markdown_math.py). KaTeX builds its
  // output with the DOM (styles through CSSOM, which the CSP allows); HTML output only, as
  // its MathML sets style attributes. A formula it cannot read stays as plain TeX.
  function typeset(el) {
    const nodes = Array.from(el.querySelectorAll(".math-inline, .math-display"));
    if (!nodes.length) return;
    loadKatex().then((katex) => {
      for (const node of nodes) {
        if (!node.isConnected || node.hasAttribute("data-tex")) continue;
        const tex = node.textContent;
        try {
          katex.render(tex, node, {
            displayMode: node.classList.contains("math-display"),
            throwOnError: true, output: "html",
          });
          node.setAttribute("data-tex", tex);
          node.setAttribute("role", "math");
          node.setAttribute("aria-label", tex);
        } catch (_) {
          node.classList.add("math-error");
        }
      }
    }, () => {});
  }

  async function copyCode(button, pre) {
    const code = pre.querySelector("code") || pre;
    let copied = false;
    try {
      await navigator.clipboard.writeText(code.textContent);
      copied = true;
    } catch (_) { /* no clipboard permission: say so on the button */ }
    button.textContent = copied ? t("Copied") : t("Copy failed");
    button.setAttribute("aria-label", copied ? t("Code copied") : t("Copying the code failed"));
    setTimeout(() => {
      button.textContent = t("Copy");
      button.setAttribute("aria-label", t("Copy code"));
    }, 2000);
  }

  // Each code block gets a copy button (in a wrapper, so that it does not scroll with the code).
  function addCopyButtons(el) {
    for (const pre of el.querySelectorAll("pre")) {
      if (pre.parentElement && pre.parentElement.classList.contains("code-block")) continue;
      const wrap = document.createElement("div");
      wrap.className = "code-block";
      pre.replaceWith(wrap);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code";
      button.textContent = t("Copy");
      button.setAttribute("aria-label", t("Copy code"));
      button.addEventListener("click", () => copyCode(button, pre));
      wrap.append(button, pre);
    }
  }

  // Put server-rendered, sanitized HTML in place and dress it (copy buttons, math).
  function showHtml(el, html) {
    el.innerHTML = html;
    addCopyButtons(el);
    typeset(el);
  }

  Arena.showHtml = showHtml;
})();
