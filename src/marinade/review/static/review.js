// Key handling for the review pages. No framework and no CDN: the machine may be offline.
// A key press POSTs JSON; the server answers with the page's changing part, rendered
// (and escaped) by its templates, which replaces #main's content.
"use strict";

(() => {
  const main = document.getElementById("main");
  const error = document.getElementById("error");
  let busy = false; // one request at a time: a key pressed meanwhile is ignored

  async function post(url, body) {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) {
        error.textContent = text;
        error.hidden = false;
        return;
      }
      error.hidden = true;
      main.innerHTML = text;
      // counts the answers shown, so a test (or a curious rater) can tell when one arrived
      document.body.dataset.answers = String(Number(document.body.dataset.answers || 0) + 1);
    } catch (failure) {
      error.textContent = `The server did not answer (${failure}); nothing was lost before this.`;
      error.hidden = false;
    } finally {
      busy = false;
    }
  }

  // The rate page: a accept, r reject, e edit, s skip, u undo.
  const rateActions = { a: "accept", r: "reject", s: "skip", u: "undo" };

  function editor() {
    return document.querySelector("#review .edit");
  }

  function startEdit() {
    const box = editor();
    if (!box) return;
    box.hidden = false;
    document.getElementById("sample-text").hidden = true;
    const area = document.getElementById("edit-text");
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  function stopEdit() {
    editor().hidden = true;
    document.getElementById("sample-text").hidden = false;
  }

  function rateKey(key, event) {
    const review = document.getElementById("review");
    const session = review.dataset.session;
    const sampleId = review.dataset.sampleId ? Number(review.dataset.sampleId) : null;
    const box = editor();
    if (box && !box.hidden) {
      if (key === "Escape") stopEdit();
      if (key === "Enter" && (event.ctrlKey || event.metaKey)) {
        const edited = document.getElementById("edit-text").value;
        post("/rate", { session, action: "accept", sample_id: sampleId, edited_text: edited });
      }
      return;
    }
    if (key === "e") {
      event.preventDefault(); // keep the "e" out of the text box
      startEdit();
      return;
    }
    const action = rateActions[key];
    if (!action || (sampleId === null && action !== "undo")) return;
    post("/rate", { session, action, sample_id: sampleId });
  }

  // The A/B page: 1 or left arrow for the left sample, 2 or right arrow for the right one.
  function abKey(key) {
    const ab = document.getElementById("ab");
    if (!ab.dataset.left) return;
    const left = Number(ab.dataset.left);
    const right = Number(ab.dataset.right);
    const winner = { 1: left, ArrowLeft: left, 2: right, ArrowRight: right }[key];
    if (winner === undefined) return;
    post("/ab/vote", { left_id: left, right_id: right, winner_id: winner });
  }

  const handlers = { rate: rateKey, ab: abKey };
  const handle = handlers[document.body.dataset.page];
  if (!handle) return;

  document.addEventListener("keydown", (event) => {
    const inEditor = event.target.id === "edit-text";
    if (!inEditor && (event.ctrlKey || event.metaKey || event.altKey)) return;
    if (!inEditor && event.target.closest("input, textarea, select")) return;
    handle(event.key, event);
  });
  for (const button of document.querySelectorAll("button[data-key]")) {
    button.addEventListener("click", (event) => {
      button.blur();
      handle(button.dataset.key, event);
    });
  }
})();
