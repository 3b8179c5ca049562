// The history page's dataset release box: one button keeps the session's conversations
// out of released datasets (POST /api/release-opt-out); the box then says so.
"use strict";

(function () {
  const { request } = window.Arena;

  function releaseOptOut(box) {
    const button = box.querySelector("[data-opt-out]");
    const state = box.querySelector("[data-opt-out-state]");
    const error = box.querySelector("[data-opt-out-error]");
    if (!button || !state || !error) return;
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.textContent = "";
      try {
        await request(box.dataset.api, "POST", { "Accept": "application/json" });
        box.dataset.optedOut = "true";
        button.hidden = true;
        state.hidden = false;
        state.focus();
      } catch (err) {
        error.textContent = err.message;
        button.disabled = false;
      }
    });
  }

  const optOutBox = document.getElementById("release-opt-out");
  if (optOutBox) releaseOptOut(optOutBox);
})();
