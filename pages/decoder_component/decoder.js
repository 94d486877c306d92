// Latent Lab's in-browser decoder (an st.components.v2 component): the latent sliders (or a
// scrubber along a path between two codes) and the picture, painted by the model's decoder
// running in onnxruntime-web (WebAssembly, one thread). Every `input` event of a drag decodes
// and paints a frame; Python hears of the code once, on `change` (the end of a drag or a key
// press). Python's side: pages/_ui_decoder.py (the data below), core/app/browser_decoder.py.
//
// data: {mode: "sliders" | "path", layout_key, ort: {module, wasm, version}, decoder: {url, key,
//   inputs, output, output_kind, value_range, layout, label, num_classes, image_shape},
//   scale, caption, rev, y, and for sliders: rows [{i, label, lo, hi, step}], shown, more, z;
//   for a path: path [[...], ...] (codes at evenly spaced t), labels [y_a, y_b] | null, t, ends}
// state sent to Python: "code" {z, y, rev} or {t, rev} at the end of a drag; "failed" (a reason).
//
// Streamlit calls this function again, on the same element, whenever the data changes; the
// element keeps its controls and code in `parentElement.__latentlab`, and takes the code in
// the data only when its `rev` changed (Python set it: a reset, a new start, a link).

const ORT = new Map(); // module URL -> Promise of the onnxruntime-web namespace (once per page load)
const SESSIONS = new Map(); // decoder URL -> Promise of its InferenceSession
const SEND_DELAY_MS = 150; // held arrow keys fire a change per step: Python hears of the last one
const DB_NAME = "latentlab";
const STORE = "files";
const STATS = (window.__latentlab ??= {
  frames: 0, // frames painted with a new image
  distinct: 0, // ... whose pixels differ from the frame before
  latencies: [], // ms from an input event to the frame that shows it
  fetched: [], // URLs fetched from the server (not found in the browser's IndexedDB)
  ready: 0, // decoders ready
  pixels: null, // the last frame's RGBA bytes (tests compare them with the server's decode)
});

const appUrl = (path) => new URL(path, document.baseURI).href;

// ---------------------------------------------------------------- files, cached in IndexedDB

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function dbDo(mode, act) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const req = act(db.transaction(STORE, mode).objectStore(STORE));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    db.close();
  }
}

// The bytes at `url`, from IndexedDB under `key` (a content hash or a version) when this browser
// has them, else fetched once and stored. IndexedDB works over plain http on a class's LAN,
// where the Cache API (secure contexts only) does not.
async function cachedBytes(url, key) {
  try {
    const hit = await dbDo("readonly", (s) => s.get(key));
    if (hit instanceof ArrayBuffer) return hit;
  } catch (e) {
    /* no IndexedDB (a private window): fetch */
  }
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url} answered HTTP ${resp.status}`);
  const bytes = await resp.arrayBuffer();
  STATS.fetched.push(url);
  dbDo("readwrite", (s) => s.put(bytes, key)).catch(() => {});
  return bytes;
}

// ---------------------------------------------------------------- onnxruntime-web and the decoder

function loadOrt(o) {
  const url = appUrl(o.module);
  if (!ORT.has(url)) {
    ORT.set(url, (async () => {
      if (typeof WebAssembly !== "object") throw new Error("WebAssembly is unavailable in this browser");
      const wasm = await cachedBytes(appUrl(o.wasm), `ort:${o.version}:${o.wasm}`);
      const ort = await import(url);
      ort.env.wasm.numThreads = 1; // no SharedArrayBuffer needed, no cross-origin isolation
      ort.env.wasm.proxy = false;
      ort.env.wasm.wasmBinary = wasm;
      ort.env.logLevel = "error";
      return ort;
    })());
  }
  return ORT.get(url);
}

function loadSession(ort, d) {
  const url = appUrl(d.url);
  if (!SESSIONS.has(url)) {
    SESSIONS.set(url, (async () => {
      const bytes = await cachedBytes(url, `decoder:${d.key}`);
      return ort.InferenceSession.create(new Uint8Array(bytes), {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
      });
    })());
  }
  return SESSIONS.get(url);
}

function feeds(ort, d, z, y) {
  const out = { [d.inputs[0]]: new ort.Tensor("float32", Float32Array.from(z), [1, z.length]) };
  if (d.inputs.length > 1) {
    if (d.label === "index") {
      out[d.inputs[1]] = new ort.Tensor("int64", BigInt64Array.of(BigInt(y)), [1]);
    } else {
      const onehot = new Float32Array(d.num_classes);
      onehot[y] = 1;
      out[d.inputs[1]] = new ort.Tensor("float32", onehot, [1, d.num_classes]);
    }
  }
  return out;
}

// The decoder's output -> RGBA bytes, as core.data.images.to_png quantizes: round(clip(p, 0, 1) * 255),
// p the sigmoid of logits or the image rescaled from value_range; grey repeats into R, G, B.
function toPixels(d, values, px) {
  const [C, H, W] = d.image_shape;
  const [lo, hi] = d.value_range;
  const logits = d.output_kind === "logits";
  const chw = d.layout === "CHW";
  for (let h = 0; h < H; h++) {
    for (let w = 0; w < W; w++) {
      const o = (h * W + w) * 4;
      for (let c = 0; c < 3; c++) {
        const ch = C === 1 ? 0 : c;
        const v = values[chw ? (ch * H + h) * W + w : (h * W + w) * C + ch];
        let p = logits ? 1 / (1 + Math.exp(-v)) : (v - lo) / (hi - lo);
        p = p < 0 ? 0 : p > 1 ? 1 : p;
        px[o + c] = Math.round(p * 255);
      }
      px[o + 3] = 255;
    }
  }
}

function checksum(bytes) {
  let h = 2166136261;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619);
  return h >>> 0;
}

// ---------------------------------------------------------------- the frame loop

// The code to decode now: the sliders' values, or the point at t on the path (neighbouring
// codes blended linearly), with the label of that end of the path for a conditional model.
function currentCode(s) {
  if (s.mode === "sliders") return { z: s.z, y: s.y };
  const n = s.path.length - 1;
  const pos = Math.min(Math.max(s.t, 0), 1) * n;
  const k = Math.min(Math.floor(pos), n - 1);
  const f = pos - k;
  const z = s.path[k].map((a, i) => a * (1 - f) + s.path[k + 1][i] * f);
  return { z, y: s.labels ? s.labels[s.t < 0.5 ? 0 : 1] : null };
}

// Ask for a frame for the input event at time t0; decodes at once unless a decode is under way
// (then the newest code is decoded as soon as it ends: frames never queue up behind a drag).
function requestFrame(s, t0) {
  if (s.pendingT0 === null) s.pendingT0 = t0;
  s.dirty = true;
  if (!s.busy && s.session) pump(s);
}

async function pump(s) {
  s.busy = true;
  try {
    while (s.dirty && s.session) {
      s.dirty = false;
      const t0 = s.pendingT0;
      s.pendingT0 = null;
      const { z, y } = currentCode(s);
      const session = s.session;
      const out = await session.run(feeds(s.ort, s.decoder, z, y));
      if (session !== s.session) continue; // the model changed meanwhile
      const tensor = out[s.decoder.output];
      toPixels(s.decoder, tensor.data, s.image.data);
      s.ctx.putImageData(s.image, 0, 0);
      markPainted(s, t0);
    }
  } catch (e) {
    fail(s, e);
  } finally {
    s.busy = false;
  }
}

// Count the frame once the browser paints it: the time of a task queued from the next
// animation frame's callback (after that frame's rendering); t0 is the earliest input it shows.
function markPainted(s, t0) {
  if (t0 !== null && (s.frameT0 === null || t0 < s.frameT0)) s.frameT0 = t0;
  if (s.framePending) return;
  s.framePending = true;
  requestAnimationFrame(() => {
    setTimeout(() => {
      const shown = s.frameT0;
      s.framePending = false;
      s.frameT0 = null;
      const sum = checksum(s.image.data);
      STATS.frames += 1;
      if (sum !== s.lastSum) STATS.distinct += 1;
      s.lastSum = sum;
      STATS.pixels = s.image.data;
      if (shown !== null) {
        STATS.latencies.push(performance.now() - shown);
        if (STATS.latencies.length > 10000) STATS.latencies.splice(0, 5000);
      }
      s.root.dataset.frames = String(STATS.frames);
    }, 0);
  });
}

function fail(s, e) {
  const why = (e && e.message ? e.message : String(e)).split("\n")[0].slice(0, 300);
  s.status.textContent = `The decoder cannot run in this browser: ${why}`;
  s.status.hidden = false;
  if (!s.failed) {
    s.failed = true;
    s.setState("failed", why);
  }
}

// ---------------------------------------------------------------- the controls

function sliderRow(s, row) {
  const label = document.createElement("label");
  label.className = "ll-slider";
  const head = document.createElement("span");
  head.className = "ll-head";
  const name = document.createElement("span");
  name.textContent = row.label;
  const value = document.createElement("span");
  value.className = "ll-value";
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: row.lo, max: row.hi, step: row.step });
  input.setAttribute("aria-label", row.label);
  input.addEventListener("input", (e) => {
    s.z[row.i] = Number(input.value);
    value.textContent = Number(input.value).toFixed(2);
    requestFrame(s, e.timeStamp);
  });
  input.addEventListener("change", () => scheduleSend(s));
  head.append(name, value);
  label.append(head, input);
  s.inputs.set(row.i, { input, value });
  return label;
}

function buildSliders(s, data) {
  const grid = document.createElement("div");
  grid.className = "ll-grid";
  data.rows.slice(0, data.shown).forEach((row) => grid.append(sliderRow(s, row)));
  s.controls.append(grid);
  if (data.rows.length > data.shown) {
    const more = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = data.more;
    const rest = document.createElement("div");
    rest.className = "ll-grid";
    data.rows.slice(data.shown).forEach((row) => rest.append(sliderRow(s, row)));
    more.append(summary, rest);
    s.controls.append(more);
  }
}

function buildScrubber(s, data) {
  const row = { i: 0, label: `t: from ${data.ends[0]} (0) to ${data.ends[1]} (1)`, lo: 0, hi: 1, step: 0.005 };
  const label = sliderRow(s, row);
  const { input, value } = s.inputs.get(0);
  s.inputs.delete(0);
  const clone = input.cloneNode(); // the slider row's handlers set a code; the scrubber sets t
  input.replaceWith(clone);
  clone.addEventListener("input", (e) => {
    s.t = Number(clone.value);
    value.textContent = s.t.toFixed(3);
    requestFrame(s, e.timeStamp);
  });
  clone.addEventListener("change", () => scheduleSend(s));
  s.scrubber = { input: clone, value };
  label.classList.add("ll-scrubber");
  s.controls.append(label);
}

function scheduleSend(s) {
  clearTimeout(s.sendTimer);
  s.sendTimer = setTimeout(() => sendCode(s), SEND_DELAY_MS);
}

function sendCode(s) {
  const round = (v) => Math.round(v * 1e4) / 1e4;
  const code = s.mode === "sliders" ? { z: Array.from(s.z, round), y: s.y } : { t: round(s.t) };
  s.setState("code", { ...code, rev: s.rev });
}

// Put the code Python sent (data.z or data.t) into the controls.
function takeCode(s, data) {
  clearTimeout(s.sendTimer); // Python's code wins over a drag that ended just before it came
  s.rev = data.rev;
  if (s.mode === "sliders") {
    s.z = Float64Array.from(data.z);
    for (const [i, { input, value }] of s.inputs) {
      input.value = String(s.z[i]);
      value.textContent = s.z[i].toFixed(2);
    }
  } else {
    s.t = data.t;
    s.scrubber.input.value = String(s.t);
    s.scrubber.value.textContent = s.t.toFixed(3);
  }
}

function build(s, data) {
  s.controls.replaceChildren();
  s.inputs = new Map();
  s.mode = data.mode;
  s.layoutKey = data.layout_key;
  if (data.mode === "sliders") buildSliders(s, data);
  else buildScrubber(s, data);
}

function setDecoder(s, data) {
  const [C, H, W] = data.decoder.image_shape;
  s.canvas.width = W;
  s.canvas.height = H;
  s.canvas.style.width = `${W * data.scale}px`;
  s.canvas.style.height = `${H * data.scale}px`;
  s.ctx = s.canvas.getContext("2d");
  s.image = s.ctx.createImageData(W, H);
  s.decoder = data.decoder;
  s.session = null;
  s.status.textContent = "Loading the decoder…";
  s.status.hidden = false;
  const want = data.decoder.url;
  loadOrt(data.ort)
    .then((ort) => loadSession(ort, data.decoder).then((session) => [ort, session]))
    .then(([ort, session]) => {
      if (s.decoder.url !== want) return;
      s.ort = ort;
      s.session = session;
      s.status.hidden = true;
      STATS.ready += 1;
      s.root.dataset.ready = "1";
      requestFrame(s, null);
    })
    .catch((e) => fail(s, e));
}

function skeleton(parent) {
  const root = document.createElement("div");
  root.className = "ll-root";
  const picture = document.createElement("figure");
  picture.className = "ll-picture";
  const canvas = document.createElement("canvas");
  canvas.className = "ll-canvas";
  const caption = document.createElement("figcaption");
  const status = document.createElement("p");
  status.className = "ll-status";
  const controls = document.createElement("div");
  controls.className = "ll-controls";
  picture.append(canvas, caption, status);
  root.append(picture, controls);
  parent.append(root);
  return { root, canvas, caption, status, controls, busy: false, dirty: false, pendingT0: null };
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let s = parentElement.__latentlab;
  if (!s) {
    s = parentElement.__latentlab = { ...skeleton(parentElement), frameT0: null, framePending: false };
  }
  s.setState = setStateValue;
  s.caption.textContent = data.caption || "";
  s.root.dataset.mode = data.mode;
  let redraw = false;
  if (s.layoutKey !== data.layout_key) {
    build(s, data);
    s.rev = undefined;
  }
  if (data.mode === "path") {
    s.path = data.path;
    s.labels = data.labels;
    redraw = true;
  }
  if (s.rev !== data.rev) {
    takeCode(s, data);
    redraw = true;
  }
  if (s.y !== data.y) {
    s.y = data.y;
    redraw = true;
  }
  if (!s.decoder || s.decoder.url !== data.decoder.url || s.canvasScale !== data.scale) {
    s.canvasScale = data.scale;
    setDecoder(s, data);
  } else if (redraw) {
    requestFrame(s, null);
  }
}
