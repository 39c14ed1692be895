// Key handling for the review pages. No framework and no CDN: the machine may be offline.
// A key press POSTs JSON; the server answers with the page's changing part, rendered
// (and escaped) by its templates, which replaces #main's content.
"use strict";

(() => {
  const main = document.getElementById("main");
  const error = document.getElementById("error");
  let busy = false; // one request at a time: a key pressed meanwhile is ignored

  const BUSY_RETRIES = 600; // a store busy for ten minutes (a huge import) still gets the key

  function pause(seconds) {
    return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  }

  // POSTs JSON; the answer's text, or null after showing why there is none. A 503 means
  // the store was busy and nothing was stored: the same request goes again, so a key press
  // is never lost while the tab stays open.
  async function send(url, body) {
    if (busy) return null;
    busy = true;
    document.body.classList.add("busy");
    try {
      for (let attempt = 1; ; attempt++) {
        const response = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        const text = await response.text();
        if (response.status === 503 && attempt <= BUSY_RETRIES) {
          error.textContent = `${text} (try ${attempt}); keep this tab open.`;
          error.hidden = false;
          await pause(Number(response.headers.get("Retry-After")) || 1);
          continue;
        }
        if (!response.ok) {
          error.textContent = text;
          error.hidden = false;
          return null;
        }
        error.hidden = true;
        return text;
      }
    } catch (failure) {
      error.textContent = `The server did not answer (${failure}); nothing was lost before this.`;
      error.hidden = false;
      return null;
    } finally {
      busy = false;
      document.body.classList.remove("busy");
    }
  }

  // POSTs JSON and swaps the answer (the page's changing part, as HTML) into #main.
  async function post(url, body) {
    const text = await send(url, body);
    if (text === null) return;
    main.innerHTML = text;
    // counts the answers shown, so a test (or a curious rater) can tell when one arrived
    document.body.dataset.answers = String(Number(document.body.dataset.answers || 0) + 1);
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

  // The co-writing page: 1-9 take a proposal, e then a number edits it first, m more,
  // b back a step; Ctrl+Enter in a text box takes the edit or adds your own words.
  let editWhich = false; // "e" was pressed: the next number opens that proposal's editor

  function step(body) {
    const story = document.getElementById("story");
    const cursor = Number(story.dataset.cursorId);
    return post(`/write/${story.dataset.storyId}/step`, { cursor_id: cursor, ...body });
  }

  function proposal(number) {
    return document.querySelector(`#proposals li[data-number="${number}"]`);
  }

  function askWhich(on) {
    editWhich = on;
    document.getElementById("edit-which").hidden = !on;
  }

  function startProposalEdit(item) {
    const area = document.getElementById("proposal-edit");
    area.value = item.querySelector(".text").textContent;
    area.dataset.nodeId = item.dataset.nodeId;
    document.getElementById("editing-number").textContent = item.dataset.number;
    document.getElementById("proposal-editor").hidden = false;
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  function writeKey(key, event) {
    const target = event.target;
    const ctrlEnter = key === "Enter" && (event.ctrlKey || event.metaKey);
    if (target.id === "proposal-edit") {
      if (key === "Escape") document.getElementById("proposal-editor").hidden = true;
      if (ctrlEnter) {
        step({ action: "pick", node_id: Number(target.dataset.nodeId), edited_text: target.value });
      }
      return;
    }
    if (target.id === "own-text") {
      if (key === "Escape") target.blur();
      if (ctrlEnter) step({ action: "own", text: target.value });
      return;
    }
    if (key === "e") {
      event.preventDefault();
      askWhich(true);
      return;
    }
    if (/^[1-9]$/.test(key)) {
      const item = proposal(key);
      const editing = editWhich;
      askWhich(false);
      if (!item) return;
      if (editing) {
        event.preventDefault(); // keep the number out of the editor
        startProposalEdit(item);
      } else {
        step({ action: "pick", node_id: Number(item.dataset.nodeId) });
      }
      return;
    }
    askWhich(false);
    if (key === "m") step({ action: "more" });
    if (key === "b") step({ action: "back" });
  }

  function writeClick(event) {
    const take = event.target.closest("button.take");
    if (take) step({ action: "pick", node_id: Number(take.closest("li").dataset.nodeId) });
    if (event.target.id === "own-add") {
      step({ action: "own", text: document.getElementById("own-text").value });
    }
  }

  function startWrite() {
    main.addEventListener("click", writeClick);
    const story = document.getElementById("story");
    if (story.dataset.proposals === "0") step({ action: "propose" }); // opened with none yet
  }

  // The stories page: start a story, then go to its page.
  function startStories() {
    document.getElementById("new-story").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const text = await send("/write/start", {
        model: form.elements.model.value,
        opening: form.elements.opening.value,
        count: Number(form.elements.count.value || 5),
      });
      if (text !== null) window.location.assign(JSON.parse(text).url);
    });
  }

  // The queue page: buttons per item (edit, save, cancel, retry, drop) and "queue the
  // accepted samples". Drop asks for a second click rather than a dialog.
  function queueClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr.item");
    const itemId = Number(row.dataset.itemId);
    const editBox = row.querySelector(".edit");
    const shown = row.querySelector("pre.text");
    const action = button.dataset.action;
    if (action === "edit" || action === "cancel") {
      editBox.hidden = action === "cancel";
      shown.hidden = action === "edit";
      if (action === "edit") editBox.querySelector("textarea").focus();
    } else if (action === "save") {
      const text = editBox.querySelector("textarea").value;
      post("/queue/item", { action: "edit", item_id: itemId, text });
    } else if (action === "retry") {
      post("/queue/item", { action: "retry", item_id: itemId });
    } else if (action === "drop") {
      if (button.dataset.armed) {
        post("/queue/item", { action: "drop", item_id: itemId });
      } else {
        button.dataset.armed = "yes";
        button.textContent = "drop: click again";
      }
    }
  }

  function startQueue() {
    main.addEventListener("click", queueClick);
    main.addEventListener("submit", (event) => {
      if (event.target.id !== "add-accepted") return;
      event.preventDefault();
      const form = event.target.elements;
      post("/queue/accepted", {
        experiment: form.experiment.value || null,
        account: form.account.value || null,
        skip_long: form.skip_long.checked,
      });
    });
  }

  // The runs tab. The list swaps in /runs-part every two seconds; a run's page fetches
  // /runs/NAME/data as often and redraws its curves (SVG) and samples, without a reload,
  // until the run is no longer training. Text goes in through textContent: samples are
  // model output.
  const POLL_SECONDS = 2;

  async function fetchText(url, accept) {
    try {
      const response = await fetch(url, { headers: { Accept: accept } });
      const text = await response.text();
      if (!response.ok) throw new Error(text);
      error.hidden = true;
      return text;
    } catch (failure) {
      error.textContent = `Could not update the page (${failure.message}); trying again.`;
      error.hidden = false;
      return null;
    }
  }

  function startRuns() {
    setInterval(async () => {
      const text = await fetchText("/runs-part", "text/html");
      if (text !== null) main.innerHTML = text;
    }, POLL_SECONDS * 1000);
  }

  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

  function svgElement(name, attributes) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    return element;
  }

  function drawCurves(data) {
    const svg = document.getElementById("curves");
    const legend = document.getElementById("curve-legend");
    const [width, height, left, bottom, top, right] = [720, 300, 50, 30, 10, 10];
    svg.replaceChildren();
    legend.replaceChildren();
    const corpora = Object.keys(data.curves);
    const points = corpora.flatMap((corpus) => data.curves[corpus]);
    svg.dataset.points = String(points.length);
    svg.dataset.lastStep = String(points.length ? Math.max(...points.map((p) => p[0])) : -1);
    if (!points.length) return;
    const maxStep = Math.max(data.total_steps, ...points.map((p) => p[0]), 1);
    let low = Math.min(...points.map((p) => p[1]));
    let high = Math.max(...points.map((p) => p[1]));
    if (high - low < 1e-6) [low, high] = [low - 0.5, high + 0.5];
    const x = (step) => left + ((width - left - right) * step) / maxStep;
    const y = (loss) => top + ((height - top - bottom) * (high - loss)) / (high - low);
    const axis = { stroke: "#888", "stroke-width": "1" };
    svg.append(svgElement("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, ...axis }));
    svg.append(svgElement("line", { x1: left, y1: top, x2: left, y2: height - bottom, ...axis }));
    for (const end of data.phase_ends.slice(0, -1)) {
      svg.append(svgElement("line", { x1: x(end), y1: top, x2: x(end), y2: height - bottom,
        stroke: "#aaa", "stroke-dasharray": "4 4", class: "phase-end" }));
    }
    const labels = [[left - 4, y(high) + 4, high.toFixed(2), "end"], [left - 4, y(low), low.toFixed(2), "end"],
      [left, height - 8, "0", "start"], [width - right, height - 8, `step ${maxStep}`, "end"]];
    for (const [lx, ly, text, anchor] of labels) {
      const label = svgElement("text", { x: lx, y: ly, "font-size": "11", "text-anchor": anchor, fill: "#555" });
      label.textContent = text;
      svg.append(label);
    }
    corpora.forEach((corpus, index) => {
      const colour = COLOURS[index % COLOURS.length];
      const line = data.curves[corpus].map(([step, loss]) => `${x(step)},${y(loss)}`).join(" ");
      svg.append(svgElement("polyline", { points: line, fill: "none", stroke: colour,
        "stroke-width": "2", "data-corpus": corpus, class: "curve" }));
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;
      const last = data.curves[corpus][data.curves[corpus].length - 1];
      item.append(swatch, `${corpus}: ${last[1].toFixed(3)} at step ${last[0]}`);
      legend.append(item);
    });
  }

  function showRun(data) {
    const run = document.getElementById("run");
    run.dataset.status = data.status;
    run.dataset.steps = String(data.steps_done);
    document.getElementById("run-status").textContent = data.status;
    document.getElementById("run-steps").textContent = `${data.steps_done}/${data.total_steps}`;
    drawCurves(data);
    const list = document.getElementById("run-samples");
    if (data.samples.length) {
      list.replaceChildren(...data.samples.map((sample) => {
        const item = document.createElement("li");
        const model = document.createElement("span");
        model.className = "model";
        model.textContent = sample.model;
        const text = document.createElement("pre");
        text.textContent = sample.text;
        item.append(model, text);
        return item;
      }));
    }
    list.dataset.count = String(data.samples.length);
  }

  function startRun() {
    const name = document.getElementById("run").dataset.run;
    const update = async () => {
      const text = await fetchText(`/runs/${encodeURIComponent(name)}/data`, "application/json");
      const data = text === null ? null : JSON.parse(text);
      if (data) showRun(data);
      // counts the updates drawn, so a test can tell one arrived
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
      if (!data || data.status === "running") setTimeout(update, POLL_SECONDS * 1000);
    };
    update();
  }

  const starters = {
    write: startWrite,
    stories: startStories,
    queue: startQueue,
    runs: startRuns,
    run: startRun,
  };
  const start = starters[document.body.dataset.page];
  if (start) start();

  const handlers = { rate: rateKey, ab: abKey, write: writeKey };
  const handle = handlers[document.body.dataset.page];
  if (!handle) return;

  document.addEventListener("keydown", (event) => {
    const inEditor = event.target.id === "edit-text" || event.target.hasAttribute("data-editor");
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
