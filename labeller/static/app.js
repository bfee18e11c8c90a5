// gridreader labeller page: plain JS, no dependencies, talks to the app's JSON API.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const els = {
    crop: $("crop"), answer: $("answer"), progress: $("progress"), help: $("help"),
    message: $("message"), meta: $("meta"), strip: $("strip"), stripBox: $("strip-box"),
    stripMark: $("strip-mark"), done: $("done"), single: $("single"), gridMode: $("grid-mode"),
    grid: $("grid"), gridHead: $("grid-head"), mode: $("mode"),
  };
  const GRID_MAX = Number(document.body.dataset.gridMax) || 48;
  const CROP_MAX_W = 480;
  const CROP_MAX_H = 260;
  const GRID_CELL_H = 72;
  // A key that saves is ignored until the crop it would save has been on screen
  // this long and painted: "e" then Enter, or a double Enter, must not accept
  // the next crop's guess before anyone saw it.
  const SETTLE_MS = 250;
  const POLL_MS = 2000;      // how often to ask whether batch added crops

  const client = clientId();
  let items = [];            // every review crop in queue order; .label is null until labelled
  let bySha = new Map();     // sha256 -> index into items
  let classSets = [];
  let pos = -1;              // index of the crop on screen; items.length means "all done"
  let grid = null;           // {cls, items, wrong: Set, busy} while in grid mode
  let chain = Promise.resolve();  // server writes run one after another, in key order
  let pending = 0;
  let writes = 0;            // bumped per write, so a sync that raced one is discarded
  const spots = new Map();   // sha256 -> where the crop sits in its row strip
  const markedWrong = new Set();  // crops clicked as wrong in a grid: not offered in grids again
  let generation = 0;        // the server's queue version; it moves when crops come or go
  let settle = { token: 0, until: 0, painted: false };

  function clientId() {
    let id = sessionStorage.getItem("gridreader.client");
    if (!id) {
      const bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      id = "tab-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem("gridreader.client", id);
    }
    return id;
  }

  async function api(method, url, body) {
    const opts = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, opts);
    } catch (err) {
      throw new Error("the labeller server cannot be reached (is it still running?)");
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (err) {
      data = null;
    }
    if (!resp.ok) throw new Error((data && data.error) || `HTTP ${resp.status}`);
    return data;
  }

  // Writes are chained so an undo never overtakes the label it undoes.
  function enqueue(task) {
    pending += 1;
    writes += 1;
    const run = chain.then(task).finally(() => {
      pending -= 1;
    });
    chain = run.catch(() => {});
    return run;
  }

  function setMessage(text, kind) {
    els.message.textContent = text;
    els.message.className = kind || "";
  }

  function setHelp(parts) {
    // parts: [["keys", "what"], ...]; keys are split on "/" into <kbd> elements.
    els.help.replaceChildren();
    parts.forEach(([keys, what], i) => {
      if (i) els.help.append(" · ");
      if (!keys) {
        els.help.append(what);
        return;
      }
      keys.split("/").forEach((k, j) => {
        if (j) els.help.append("/");
        const kbd = document.createElement("kbd");
        kbd.textContent = k;
        els.help.append(kbd);
      });
      els.help.append(" " + what);
    });
  }

  const HELP_SINGLE = [
    ["0-9/Enter", "save the number"],
    ["Enter", "accept the guess"],
    ["e/-", "empty"],
    ["s", "skip"],
    ["Backspace", "on an empty answer: undo"],
    ["←/→", "back / forth"],
    ["g", "grid mode"],
  ];

  function gridHelp(cls) {
    return [
      ["", "click the wrong ones"],
      ["c/Enter", `confirm the rest as ${cls}`],
      ["←/→", "other class"],
      ["Backspace", "undo"],
      ["g/Esc", "single mode"],
    ];
  }

  function normalizeLocal(value) {
    const t = String(value).trim().toLowerCase();
    if (t === "e" || t === "-" || t === "empty") return "empty";
    if (/^[0-9]{1,6}$/.test(t)) return String(parseInt(t, 10));
    return null;
  }

  function labelledCount() {
    return items.reduce((n, it) => n + (it.label !== null ? 1 : 0), 0);
  }

  function renderProgress() {
    els.progress.textContent = `${labelledCount()} / ${items.length} labelled`;
  }

  function setItems(data) {
    items = data.items;
    classSets = data.class_sets;
    bySha = new Map(items.map((it, i) => [it.sha256, i]));
    generation = data.progress.generation || 0;
  }

  // -- not saving what nobody saw --------------------------------------------

  function unsettle() {
    settle = { token: settle.token + 1, until: performance.now() + SETTLE_MS, painted: false };
    document.body.dataset.settled = "0";
    const token = settle.token;
    setTimeout(() => checkSettled(token), SETTLE_MS);
    setTimeout(() => painted(token), 3000); // an image that never loads still unlocks
    return token;
  }

  // Two frames after the image loaded, it is on the screen.
  function painted(token) {
    if (token !== settle.token || settle.painted) return;
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        if (token !== settle.token) return;
        settle.painted = true;
        checkSettled(token);
      }),
    );
  }

  function checkSettled(token) {
    if (token !== settle.token || !settle.painted) return;
    const wait = settle.until - performance.now();
    if (wait > 0) setTimeout(() => checkSettled(token), wait);
    else document.body.dataset.settled = "1";
  }

  function isSettled(e) {
    if (document.body.dataset.settled === "1") return true;
    e.preventDefault();
    setMessage("Ignored that key: the crop had just changed. Look at it, then press again.", "warn");
    return false;
  }

  // Returns false (and changes nothing) if a write was queued while the list loaded:
  // the list might not show it yet.
  async function loadItems() {
    const before = writes;
    const data = await api("GET", "/api/queue?all=1");
    if (writes !== before) return false;
    setItems(data);
    renderProgress();
    return true;
  }

  // Another tab (or a script) may have labelled crops; pick up its work.
  async function sync() {
    const current = items[pos];
    const wasOpen = current && current.label === null;
    if (!(await loadItems())) return; // the racing write's afterWrite syncs again
    if (grid) {
      buildGrid();
      return;
    }
    const i = current ? bySha.get(current.sha256) : undefined;
    if (i === undefined) {
      advanceFrom(-1);
    } else if (wasOpen && items[i].label !== null) {
      advanceFrom(i);
    } else {
      pos = i;
    }
  }

  function afterWrite(progress) {
    if (pending === 0 && progress && progress.labelled !== labelledCount()) {
      sync().catch((err) => setMessage(err.message, "error"));
    }
  }

  // -- single mode ---------------------------------------------------------

  function nextOpen(from) {
    const n = items.length;
    for (let k = 1; k <= n; k += 1) {
      const i = (((from + k) % n) + n) % n;
      if (items[i].label === null) return i;
    }
    return -1;
  }

  function advanceFrom(i) {
    const j = items.length ? nextOpen(i) : -1;
    if (j < 0) showDone();
    else show(j);
  }

  function focusAnswer() {
    if (grid) return;
    els.answer.focus();
    els.answer.select();
  }

  function show(i) {
    pos = i;
    const it = items[i];
    sessionStorage.setItem("gridreader.current", it.sha256);
    els.done.hidden = true;
    els.crop.hidden = false;
    if (els.crop.dataset.sha256 !== it.sha256) unsettle();
    els.crop.dataset.sha256 = it.sha256;
    els.crop.alt = `cell crop ${it.name}`;
    if (els.crop.getAttribute("src") !== it.crop) {
      els.crop.style.width = "";
      els.crop.src = it.crop;
    } else if (els.crop.complete) {
      painted(settle.token);
    }
    els.answer.value = it.label !== null ? it.label : it.guess;
    els.answer.dataset.sha256 = it.sha256;
    els.answer.classList.toggle("labelled", it.label !== null);
    renderMeta(it);
    renderStrip(it);
    preload(i);
    focusAnswer();
  }

  function showDone() {
    pos = items.length;
    sessionStorage.removeItem("gridreader.current");
    els.crop.hidden = true;
    els.crop.removeAttribute("src");
    delete els.crop.dataset.sha256;
    els.answer.value = "";
    delete els.answer.dataset.sha256;
    els.answer.classList.remove("labelled");
    els.meta.replaceChildren();
    els.stripBox.hidden = true;
    els.done.hidden = false;
    focusAnswer();
  }

  function renderMeta(it) {
    const rows = [
      ["image", it.image_name],
      ["cell", `row ${it.row}, column ${it.col}`],
      ["guess", `${it.guess} (${(100 * it.confidence).toFixed(1)}%)`],
      ["model", it.model],
      ["status", it.label !== null ? `labelled ${it.label}` : "not labelled"],
      ["queue", `${pos + 1} of ${items.length}`],
    ];
    els.meta.replaceChildren();
    for (const [k, v] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      els.meta.append(dt, dd);
    }
  }

  function renderStrip(it) {
    els.stripMark.hidden = true;
    if (!it.strip) {
      els.stripBox.hidden = true;
      return;
    }
    els.stripBox.hidden = false;
    if (els.strip.getAttribute("src") !== it.strip) {
      els.strip.style.width = "";
      els.strip.src = it.strip;
    }
    const place = (spot) => {
      if (items[pos] !== it || !spot || !spot.found) return;
      els.stripMark.style.left = `${(100 * spot.x0) / spot.width}%`;
      els.stripMark.style.width = `${(100 * (spot.x1 - spot.x0)) / spot.width}%`;
      els.stripMark.hidden = false;
    };
    if (spots.has(it.sha256)) {
      place(spots.get(it.sha256));
    } else {
      api("GET", `/api/locate/${it.sha256}`)
        .then((spot) => {
          spots.set(it.sha256, spot);
          place(spot);
        })
        .catch(() => {});
    }
  }

  function preload(i) {
    let j = i;
    for (let k = 0; k < 3; k += 1) {
      j = nextOpen(j);
      if (j < 0 || j === i) break;
      new Image().src = items[j].crop;
    }
  }

  // Integer upscaling: every source pixel becomes an equal square block.
  function scaleImage(img, maxW, maxH) {
    const w = img.naturalWidth;
    const h = img.naturalHeight;
    if (!w || !h) return;
    const s = Math.max(1, Math.floor(Math.min(maxW / w, maxH / h)));
    img.style.width = `${w * s}px`;
    img.style.height = `${h * s}px`;
  }

  els.crop.addEventListener("load", () => {
    scaleImage(els.crop, CROP_MAX_W, CROP_MAX_H);
    painted(settle.token);
  });
  els.crop.addEventListener("error", () => painted(settle.token));
  els.strip.addEventListener("load", () => {
    const room = els.stripBox.clientWidth - 20;
    const w = els.strip.naturalWidth;
    if (w && w < room) scaleImage(els.strip, room, 160);
    else els.strip.style.height = "";
  });

  function submitAnswer() {
    const value = els.answer.value.trim();
    if (pos >= items.length) return;
    if (value === "") {
      setMessage("Type a number, e for empty, or s to skip.", "error");
      return;
    }
    submit(value);
  }

  function submit(value) {
    const i = pos;
    const it = items[i];
    if (!it) return;
    const local = normalizeLocal(value);
    if (it.label !== null && local === it.label) {
      setMessage("");
      advanceFrom(i); // unchanged: nothing to write
      return;
    }
    const before = it.label;
    const plausible = local !== null && classSets[it.class_set].includes(local);
    if (plausible) {
      // Move on at once; the write follows in order and a refusal brings the crop back.
      it.label = local;
      setMessage("");
      renderProgress();
      advanceFrom(i);
    }
    enqueue(async () => {
      try {
        const r = await api("POST", "/api/label", { sha256: it.sha256, label: value, client });
        it.label = r.label;
        renderProgress();
        if (!plausible && items[pos] === it) advanceFrom(bySha.get(it.sha256));
        afterWrite(r.progress);
      } catch (err) {
        it.label = before;
        renderProgress();
        if (!grid) {
          show(bySha.get(it.sha256));
          els.answer.value = value;
          els.answer.select();
        }
        setMessage(`Not saved: ${err.message}`, "error");
      }
    });
  }

  function skip() {
    if (pos >= items.length) return;
    setMessage("Skipped.");
    advanceFrom(pos);
  }

  function move(delta) {
    if (!items.length || (pos >= items.length && delta > 0)) return;
    const j = Math.min(items.length - 1, Math.max(0, pos + delta));
    if (j !== pos || pos >= items.length) show(j);
  }

  function undo() {
    enqueue(async () => {
      try {
        const r = await api("POST", "/api/undo", { client });
        if (!r.undone.length) {
          setMessage("Nothing to undo.");
          return;
        }
        for (const u of r.undone) {
          const i = bySha.get(u.sha256);
          if (i !== undefined) items[i].label = u.now;
        }
        renderProgress();
        const first = r.undone[0];
        const what = r.undone.length === 1 ? `${first.label}` : `${r.undone.length} labels`;
        setMessage(`Undone: ${what}.`, "ok");
        if (grid) {
          buildGrid();
        } else {
          const i = bySha.get(first.sha256);
          if (i !== undefined) show(i);
        }
        afterWrite(r.progress);
      } catch (err) {
        setMessage(`Undo failed: ${err.message}`, "error");
      }
    });
  }

  function onSingleKey(e) {
    const k = e.key;
    if (k === "Enter") {
      e.preventDefault();
      if (!e.repeat && isSettled(e)) submitAnswer();
    } else if (k === "e" || k === "E" || k === "-") {
      e.preventDefault();
      if (!e.repeat && pos < items.length && isSettled(e)) submit("empty");
    } else if (k === "s" || k === "S") {
      e.preventDefault();
      if (!e.repeat) skip();
    } else if (k === "g" || k === "G") {
      e.preventDefault();
      enterGrid();
    } else if (k === "ArrowLeft" || k === "ArrowRight") {
      e.preventDefault();
      move(k === "ArrowLeft" ? -1 : 1);
    } else if (k === "Backspace") {
      if (els.answer.value === "" || document.activeElement !== els.answer) {
        e.preventDefault();
        if (!e.repeat) undo(); // a held Backspace clears the answer but never undoes
      }
    } else if (/^[0-9]$/.test(k)) {
      if (document.activeElement !== els.answer) {
        e.preventDefault();
        els.answer.focus();
        els.answer.value = k;
      }
    } else if (k.length === 1) {
      e.preventDefault(); // the answer takes digits only
    }
  }

  // -- grid mode -----------------------------------------------------------

  function openByClass() {
    const counts = new Map();
    for (const it of items) {
      if (it.label === null && !markedWrong.has(it.sha256)) {
        counts.set(it.guess, (counts.get(it.guess) || 0) + 1);
      }
    }
    const key = (c) => (/^[0-9]+$/.test(c) ? Number(c) : Infinity);
    return new Map([...counts.entries()].sort((a, b) => key(a[0]) - key(b[0])));
  }

  async function enterGrid() {
    await chain;
    try {
      await loadItems();
    } catch (err) {
      setMessage(err.message, "error");
      return;
    }
    const counts = openByClass();
    if (!counts.size) {
      setMessage("No crops left for grid mode.");
      return;
    }
    const current = items[pos];
    let cls = current && counts.has(current.guess) ? current.guess : null;
    if (cls === null) cls = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
    grid = { cls, items: [], wrong: new Set(), busy: false };
    els.single.hidden = true;
    els.gridMode.hidden = false;
    els.mode.textContent = "grid";
    els.answer.blur();
    setMessage("");
    buildGrid();
  }

  function exitGrid() {
    grid = null;
    delete els.crop.dataset.sha256; // the crop comes back into view: let it settle again
    els.gridMode.hidden = true;
    els.single.hidden = false;
    els.mode.textContent = "single";
    setHelp(HELP_SINGLE);
    const it = items[pos];
    if (it && it.label === null) show(pos);
    else advanceFrom(pos >= items.length ? -1 : pos);
  }

  function buildGrid() {
    const counts = openByClass();
    if (!counts.has(grid.cls)) {
      if (!counts.size) {
        exitGrid();
        setMessage("Grid mode: no crops left.", "ok");
        return;
      }
      grid.cls = nextClass(counts, 1);
    }
    const list = items
      .filter((it) => it.label === null && it.guess === grid.cls && !markedWrong.has(it.sha256))
      .slice(0, GRID_MAX);
    const same =
      list.length === grid.items.length && list.every((it, i) => it === grid.items[i]);
    if (!same) painted(unsettle()); // a grid of new crops: no confirming it unseen
    grid.items = list;
    grid.wrong = new Set();
    els.grid.dataset.class = grid.cls;
    els.grid.replaceChildren(...list.map(cellButton));
    els.gridHead.textContent =
      `Model says ${grid.cls}: ${list.length} of ${counts.get(grid.cls)} shown. ` +
      `Click the wrong ones, then c confirms the rest as ${grid.cls}.`;
    setHelp(gridHelp(grid.cls));
  }

  function nextClass(counts, delta) {
    const classes = [...counts.keys()];
    if (!classes.length) return grid.cls;
    const key = (c) => (/^[0-9]+$/.test(c) ? Number(c) : Infinity);
    let i = classes.indexOf(grid.cls);
    if (i < 0) {
      // The class ran out: take the neighbour in class order.
      i = classes.findIndex((c) => key(c) > key(grid.cls));
      if (i < 0) i = 0;
      return classes[delta > 0 ? i : (i - 1 + classes.length) % classes.length];
    }
    return classes[(i + delta + classes.length) % classes.length];
  }

  function cellButton(it) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cell";
    b.tabIndex = -1;
    b.dataset.sha256 = it.sha256;
    b.setAttribute("aria-pressed", "false");
    b.title = `${it.image_name} row ${it.row} col ${it.col}: ${(100 * it.confidence).toFixed(1)}%`;
    const img = document.createElement("img");
    img.alt = `crop ${it.name}`;
    img.addEventListener("load", () => scaleImage(img, 4 * GRID_CELL_H, GRID_CELL_H));
    img.src = it.crop;
    const cap = document.createElement("span");
    cap.textContent = `${(100 * it.confidence).toFixed(0)}%`;
    b.append(img, cap);
    // Keep focus off the button so Enter confirms the grid instead of clicking it.
    b.addEventListener("mousedown", (e) => e.preventDefault());
    b.addEventListener("click", () => {
      const wrong = !grid.wrong.has(it.sha256);
      if (wrong) grid.wrong.add(it.sha256);
      else grid.wrong.delete(it.sha256);
      b.classList.toggle("wrong", wrong);
      b.setAttribute("aria-pressed", String(wrong));
    });
    return b;
  }

  function confirmGrid() {
    const g = grid;
    if (g.busy) return;
    const ok = g.items.filter((it) => !g.wrong.has(it.sha256));
    g.wrong.forEach((s) => markedWrong.add(s));
    if (!ok.length) {
      setMessage("Every crop here is marked wrong: nothing confirmed.");
      buildGrid();
      return;
    }
    g.busy = true;
    enqueue(async () => {
      try {
        const r = await api("POST", "/api/confirm", {
          class: g.cls,
          sha256s: ok.map((it) => it.sha256),
          client,
        });
        ok.forEach((it) => {
          it.label = r.class;
        });
        renderProgress();
        setMessage(`${r.stored} crops confirmed as ${r.class}.`, "ok");
        afterWrite(r.progress);
      } catch (err) {
        setMessage(`Not saved: ${err.message}`, "error");
      } finally {
        g.busy = false;
        if (grid === g) buildGrid();
      }
    });
  }

  function onGridKey(e) {
    const k = e.key;
    if (k === "c" || k === "C" || k === "Enter") {
      e.preventDefault();
      if (!e.repeat && isSettled(e)) confirmGrid();
    } else if (k === "g" || k === "G" || k === "Escape") {
      e.preventDefault();
      exitGrid();
    } else if (k === "ArrowLeft" || k === "ArrowRight") {
      e.preventDefault();
      grid.cls = nextClass(openByClass(), k === "ArrowLeft" ? -1 : 1);
      buildGrid();
    } else if (k === "Backspace") {
      e.preventDefault();
      if (!e.repeat) undo();
    }
  }

  // -- start ---------------------------------------------------------------

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return; // leave browser shortcuts alone
    if (grid) onGridKey(e);
    else onSingleKey(e);
  });
  document.addEventListener("click", (e) => {
    if (!grid && e.target !== els.answer) focusAnswer();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && pending === 0) sync().catch(() => {});
  });

  // Crops that a running batch adds join the queue: the server rescans its
  // folders, and the page reloads the list when the queue's version moves.
  async function poll() {
    try {
      if (!document.hidden && !grid && pending === 0) {
        const p = await api("GET", "/api/progress");
        if (p.generation !== generation && pending === 0 && !grid) await sync();
      }
    } catch (err) {
      // the server is away for a moment; the next poll tries again
    }
    setTimeout(poll, POLL_MS);
  }

  async function init() {
    setHelp(HELP_SINGLE);
    try {
      await loadItems();
    } catch (err) {
      setMessage(err.message, "error");
      return;
    }
    const saved = sessionStorage.getItem("gridreader.current");
    const i = saved !== null && bySha.has(saved) ? bySha.get(saved) : -1;
    if (!items.length) showDone();
    else if (i >= 0 && items[i].label === null) show(i);
    else advanceFrom(i);
    document.body.dataset.ready = "1";
    setTimeout(poll, POLL_MS);
  }

  init();
})();
