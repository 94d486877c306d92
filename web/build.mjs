// Copy onnxruntime-web's WebAssembly-only build (installed by `npm ci` from package-lock.json)
// into ../static/ort/, which Streamlit serves at /app/static/ort/ (server.enableStaticServing),
// with its licence and a manifest that core/browser_decoder.py reads. Node only, no bundler:
// ort.wasm.bundle.min.mjs is the WebAssembly execution provider with its Emscripten glue
// bundled in, and ort-wasm-simd-threaded.wasm its binary (it runs single-threaded without
// cross-origin isolation; the JSEP/WebGPU/JSPI variants are not needed). Run: `make web`.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "node_modules", "onnxruntime-web", "dist");
const out = join(here, "..", "static", "ort");
const { version } = JSON.parse(readFileSync(join(here, "node_modules", "onnxruntime-web", "package.json"), "utf8"));
const files = { module: "ort.wasm.bundle.min.mjs", wasm: "ort-wasm-simd-threaded.wasm" };

const tmp = `${out}.tmp`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
const sha256 = {};
for (const name of Object.values(files)) {
  copyFileSync(join(dist, name), join(tmp, name));
  sha256[name] = createHash("sha256").update(readFileSync(join(tmp, name))).digest("hex");
}
copyFileSync(join(here, "LICENSE-onnxruntime.txt"), join(tmp, "LICENSE.txt"));
writeFileSync(join(tmp, "manifest.json"), JSON.stringify({ package: "onnxruntime-web", version, ...files, sha256 }, null, 2) + "\n");
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
console.log(`static/ort: onnxruntime-web ${version} (${Object.values(files).join(", ")}, LICENSE.txt)`);
