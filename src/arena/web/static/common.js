// What every arena page script shares, on one global namespace (window.Arena): the page's
// text through t()/tn() from its JSON catalog (#arena-i18n, web/i18n.py; the English msgid
// as fallback) and request(), fetch() with the session's CSRF token. Load order (deferred,
// in the templates): common.js, api_errors.js, then the page's own scripts.
"use strict";

window.Arena = (function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const lang = document.documentElement.lang || "en";
  const plural = new Intl.PluralRules(lang);

  const messages = (() => {
    const el = document.getElementById("arena-i18n");
    try { return (el && JSON.parse(el.textContent)) || {}; } catch (_) { return {}; }
  })();
  // Fill %(name)s placeholders (the catalogs' python-format) from params.
  function fill(text, params) {
    return text.replace(/%\((\w+)\)s/g, (m, k) => (params && k in params ? String(params[k]) : m));
  }
  function t(msgid, params) {
    const s = messages[msgid];
    return fill(typeof s === "string" && s ? s : msgid, params);
  }
  // Plural forms come keyed by CLDR category (one, many, other…), as Intl.PluralRules names them.
  function tn(singular, pluralForm, n, params) {
    const forms = messages[singular];
    let text = n === 1 ? singular : pluralForm;
    if (forms && typeof forms === "object") text = forms[plural.select(n)] || forms.other || text;
    return fill(text, { n: n.toLocaleString(lang), ...params });
  }

  // fetch() with the session's CSRF token; an error answer or a lost connection throws an
  // Error whose message is for the page (an error answer worded by api_errors.js).
  async function request(url, method, headers, body) {
    let resp;
    try {
      resp = await fetch(url, {
        method, body, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, ...headers },
      });
    } catch (_) {
      throw new Error(t("Could not reach the server. Check your connection and try again."));
    }
    if (!resp.ok) throw await window.Arena.readError(resp);
    return resp;
  }

  return { lang, fill, t, tn, request };
})();
