// JSON API errors worded in the page's language from their stable code (and, where one
// code covers several cases, the field it names), never from the server's English text:
// a code says the same whichever models are in the battle. Also the chat's stream notices
// the server sends as codes (an end frame's notice, a leak frame, a failed side's kind).
// Needs common.js; gives window.Arena readError and the notice texts (NOTICES, TURN_FAILED,
// SIDE_ERRORS, LEAK_TEXT).
"use strict";

(function () {
  const Arena = window.Arena;
  const { t, tn, lang } = Arena;

  // Notices the server sends as stable codes (with English text for API clients), worded
  // here in the page's language: translated templates, filled in when shown.
  const NOTICES = { // by code: an end frame's notice, a leak frame's or an API error's code
    answer_failed: t("An answer failed, so this round cannot be voted on. Regenerate the answers or start a new round."),
    identity_leak: t("One of the answers reveals which model wrote it. You can still vote, but this vote will not count toward the leaderboard."),
  };
  const TURN_FAILED = t("The server could not finish this turn. Try regenerating.");

  // A failed side's notice, worded here from its error frame's kind.
  const SIDE_ERRORS = { // by an error frame's kind (a failed side)
    failed: t("%(label)s could not answer. Regenerate the answers or start a new round."),
    timeout: t("%(label)s did not answer in time. Try regenerating."),
    context_length: t("The conversation is too long for %(label)s. Start a new round."),
    unavailable: t("%(label)s is unavailable right now. Try again shortly."),
    rejected: t("%(label)s refused this request. Try rephrasing or start a new round."),
    upstream: t("%(label)s failed while answering. Try regenerating."),
    internal: t("%(label)s failed while answering. Try regenerating."),
  };
  const LEAK_TEXT = t("%(label)s's answer names a model, which may give the battle away. You can still vote, but the vote will be stored as flagged and will not count toward the leaderboard.");

  // The page's limits, for the errors that name them (data-* on the message form).
  function pageLimit(name) {
    const form = document.getElementById("composer");
    const prompt = document.getElementById("prompt");
    const value = name === "chars" ? prompt && prompt.maxLength : form && form.dataset[name];
    const n = Number(value);
    return Number.isFinite(n) && n > 0 ? n : null;
  }

  // JSON API errors worded from their stable code (and, where one code covers several
  // cases, the field it names), never from the server's English text: a code says the
  // same whichever models are in the battle. Unknown codes fall back to the server's text.
  const API_ERRORS = {
    rate_limit_exceeded: (e) => (e.retryAfter
      ? tn("Too many requests in a short time. Try again in %(n)s second.",
        "Too many requests in a short time. Try again in %(n)s seconds.", e.retryAfter)
      : t("Too many requests in a short time. Wait a moment and try again.")),
    empty_message: () => t("Write a message before sending."),
    "request_too_large:prompt": () => (pageLimit("chars")
      ? tn("Your message is too long: the limit is %(n)s character. Shorten it and send it again.",
        "Your message is too long: the limit is %(n)s characters. Shorten it and send it again.",
        pageLimit("chars"))
      : t("Your message is too long. Shorten it and send it again.")),
    "request_too_large:image": () => (pageLimit("maxImageMb")
      ? t("The image is too large: the limit is %(size)s MB. Choose a smaller image.",
        { size: pageLimit("maxImageMb").toLocaleString(lang) })
      : t("The image is too large. Choose a smaller image.")),
    request_too_large: () => t("The request is too large to send. Shorten your message and try again."),
    image_too_many_pixels: () => t("The image has too many pixels. Scale it down and attach it again."),
    "unsupported_media_type:image": () => t("This file is not a readable PNG, JPEG, WebP or GIF image. Choose another image."),
    unsupported_media_type: () => t("The server could not read this request. Reload the page and try again."),
    "null:image": () => t("The image could not be read. Choose a PNG, JPEG, WebP or GIF file and attach it again."),
    "null:image_id": () => t("The image could not be read. Choose a PNG, JPEG, WebP or GIF file and attach it again."),
    "null:models": () => t("Pick two different models."),
    text_only_battle: () => t("This battle was started without an image, so it takes text only. Start a new round with the image attached."),
    vision_not_supported: () => t("The chosen models cannot see images. Send the message without the image, or pick a vision model and start a new round with the image attached."),
    not_vision_capable: () => t("A chosen model cannot read images. Pick models marked vision, or send the message without the image."),
    images_not_supported: () => t("This arena does not have two models that can read images, so waiting will not help. Send your message without the image."),
    not_enough_models: () => t("Not enough models are available for a battle right now. Try again in a few minutes."),
    model_unavailable: () => t("A chosen model is unavailable right now. Pick another model."),
    model_not_found: () => t("A chosen model is not offered any more. Reload the page to see the models on offer."),
    models_unavailable: () => t("This chat's models are no longer being served. Start a new round."),
    no_healthy_worker: () => t("No model can answer right now. Try again in a few minutes."),
    upstream_error: () => t("A model failed while answering. Try regenerating."),
    upstream_timeout: () => t("A model did not answer in time. Try regenerating."),
    context_length_exceeded: () => t("The conversation is too long for the models. Start a new round."),
    content_flagged: () => t("Moderation flagged your message, so it was not sent to any model. Rephrase it and try again."),
    session_expired: () => t("Your session expired. Reload the page to start a new one."),
    csrf_failed: () => t("This page's session is no longer valid. Reload the page and try again."),
    turn_limit_reached: () => (pageLimit("maxTurns")
      ? tn("This conversation reached its limit of %(n)s turn. Start a new round.",
        "This conversation reached its limit of %(n)s turns. Start a new round.",
        pageLimit("maxTurns"))
      : t("This conversation reached its limit of turns. Start a new round.")),
    battle_streaming: () => t("The models are still answering. Wait until they finish."),
    vote_while_streaming: () => t("Wait until every answer has finished, then vote."),
    vote_before_answer: () => t("Wait for the answers before you vote."),
    nothing_to_regenerate: () => t("There is no finished answer to regenerate yet."),
    not_streaming: () => TURN_FAILED,
    already_answered: () => TURN_FAILED,
    invalid_vote: () => t("That vote is not one of the choices. Reload the page and try again."),
    already_voted: () => t("This battle already has a vote. Press New round to battle again."),
    battle_closed: () => t("This battle is closed. Press New round to start another."),
    no_vote: () => t("This battle has no vote yet."),
    not_revealed: () => t("The model names are shown after you vote."),
    answer_failed: () => NOTICES.answer_failed,
    identity_leak: () => NOTICES.identity_leak,
    "not_found:battle_id": () => t("This battle is no longer available. Press New round to start another."),
    "not_found:image_id": () => t("The image is no longer available. Attach it again."),
    malformed_json: () => t("The server could not read this request. Reload the page and try again."),
    invalid_body: () => t("The server could not read this request. Reload the page and try again."),
  };

  // The words for an error answer: by code and field, then by code, then the server's own.
  function describeError(status, err, retryAfter) {
    const code = err.code || null;
    const word = API_ERRORS[code + ":" + err.param] || (code && API_ERRORS[code]);
    if (word) return word({ retryAfter });
    return err.message || t("Request failed (HTTP %(status)s).", { status });
  }

  class ApiError extends Error {
    constructor(status, body, retryAfter) {
      const err = (body && body.error) || {};
      super(describeError(status, err, retryAfter));
      this.status = status;
      this.code = err.code || null;
    }
  }

  async function readError(resp) {
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    const retry = parseInt(resp.headers.get("Retry-After") || "", 10);
    return new ApiError(resp.status, body, retry > 0 ? retry : null);
  }

  Object.assign(Arena, { readError, NOTICES, TURN_FAILED, SIDE_ERRORS, LEAK_TEXT });
})();
