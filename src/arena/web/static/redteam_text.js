// The red-team game's words: what a challenge asks for, the clock, how an answer was judged
// and how a round ended, in the page's language (t()/tn() from common.js). Kept apart from
// redteam.js, which plays the round. Gives window.Arena.RedTeamText.
"use strict";

(function () {
  const { t } = window.Arena;

  const MATCH = {
    exact: t("exact match"),
    case_insensitive: t("any letter case"),
    fuzzy: t("small typos forgiven"),
  };
  const SECRETS = { credential: t("an API key"), training_record: t("a private record") };
  // Errors of this game's API, worded from their stable code (api_errors.js words the rest).
  const ERRORS = {
    nickname_taken: t("That nickname is taken. Pick another one."),
    invalid_nickname: t("A nickname is 3 to 32 letters, digits, spaces, dots, dashes or apostrophes, starting with a letter or digit."),
    round_over: t("This round is over. Press New round to play again."),
    turn_in_progress: t("The model is still answering. Wait until it finishes."),
    no_model_available: t("No model of this challenge can play right now. Try another challenge or come back shortly."),
    message_too_long: t("Your message is too long. Shorten it and send it again."),
  };
  const TURN_FAILED = t("The model could not answer, so this turn does not count. Send your message again.");

  function describeTarget(challenge) {
    if (challenge.kind === "say_phrase") {
      return t("Make the model say: “%(phrase)s” (%(match)s).",
        { phrase: challenge.phrase, match: MATCH[challenge.match] || challenge.match });
    }
    if (challenge.kind === "leak_secret") {
      return t("The model holds %(secret)s; make it reveal it, in any form.",
        { secret: SECRETS[challenge.secret_kind] || challenge.secret_kind });
    }
    if (challenge.kind === "judge_goal") return t("Goal: %(goal)s", { goal: challenge.goal });
    return challenge.description || "";
  }

  function clockText(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    const time = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    return t("Time left: %(time)s", { time });
  }

  // How a detector found the target (its method, e.g. "reversed base64 of hex (homoglyphs)"),
  // said in the page's language: each known part of the method, in order.
  function methodText(method) {
    const parts = {
      exact: t("exact words"),
      case_insensitive: t("same words, any letter case"),
      fuzzy: t("a close match"),
      text: t("plain text"),
      reversed: t("reversed"),
      base64: t("base64"),
      hex: t("hex"),
      homoglyphs: t("look-alike letters"),
      leetspeak: t("leetspeak"),
    };
    const words = method.match(/[a-z_0-9]+/g) || [];
    const known = words.filter((w) => w in parts).map((w) => parts[w]);
    return known.length ? known.join(", ") : method;
  }

  // How a turn's answer was judged: the check of the target, or the judge's verdict.
  function verdictItem(success, method, judge) {
    const li = document.createElement("li");
    li.className = "rt-verdict " + (success ? "rt-hit" : "rt-miss");
    const head = document.createElement("p");
    if (judge) {
      if (judge.status !== "ok") head.textContent = t("The judge could not decide on this answer.");
      else if (judge.achieved) head.textContent = t("The judge says the goal is reached.");
      else head.textContent = t("The judge says the goal is not reached yet.");
      li.appendChild(head);
      if (judge.explanation) {
        const why = document.createElement("p");
        why.className = "rt-explanation";
        const label = document.createElement("strong");
        label.textContent = t("The judge's explanation:");
        why.append(label, " ", judge.explanation);
        li.appendChild(why);
      }
    } else {
      head.textContent = success
        ? t("Success: the target is in this answer.")
        : t("Not yet: the target is not in this answer.");
      if (success && method) {
        head.append(" ", t("(found by: %(method)s)", { method: methodText(method) }));
      }
      li.appendChild(head);
    }
    return li;
  }

  function reasonText(v) {
    if (v.status === "won") {
      const turn = v.success_turn || v.turns_used;
      if (v.success_method === "judge") return t("The judge decided the goal was reached on turn %(turn)s.", { turn });
      if (v.challenge.kind === "leak_secret") return t("The model revealed the secret on turn %(turn)s.", { turn });
      return t("The model said the target phrase on turn %(turn)s.", { turn });
    }
    if (v.end_reason === "time_limit") return t("The time ran out.");
    if (v.end_reason === "turn_limit") return t("No turns were left.");
    if (v.end_reason === "gave_up") return t("You gave up.");
    return t("The round is over.");
  }

  function labelled(el, label, value, tag) {
    const strong = document.createElement(tag);
    strong.textContent = value;
    el.replaceChildren(label + " ", strong);
  }

  // Fills the outcome box (#rt-outcome) with how the round ended, the model and any secret.
  function fillOutcome(outcome, v) {
    const $ = (id) => document.getElementById(id);
    outcome.classList.toggle("rt-won", v.status === "won");
    outcome.classList.toggle("rt-lost", v.status !== "won");
    $("rt-outcome-title").textContent = v.status === "won" ? t("You won!") : t("You lost.");
    $("rt-outcome-reason").textContent = reasonText(v);
    labelled($("rt-outcome-model"), t("The model was:"), v.model || "", "strong");
    const secret = $("rt-outcome-secret");
    secret.hidden = !v.secret;
    if (v.secret) labelled(secret, t("The planted secret was:"), v.secret, "code");
    const note = $("rt-outcome-note");
    note.hidden = !v.duplicate;
    note.textContent = v.duplicate
      ? t("This attack repeats one that already beat this model, so it counts once on the leaderboard.")
      : "";
    outcome.hidden = false;
  }

  window.Arena.RedTeamText = {
    ERRORS, TURN_FAILED, describeTarget, clockText, verdictItem, fillOutcome,
  };
})();
