// A text/event-stream body from fetch(), read event by event: each event's JSON data goes
// to the handler named by its event field (unnamed or unknown events are skipped).
// Gives window.Arena readEvents.
"use strict";

(function () {
  // Events are separated by a blank line; an event's data lines join with newlines.
  async function readEvents(resp, handlers) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of raw.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length || !handlers[event]) continue;
        handlers[event](JSON.parse(data.join("\n")));
      }
    }
  }

  window.Arena.readEvents = readEvents;
})();
