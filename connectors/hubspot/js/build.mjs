// Copies HubSpot's calling-extensions SDK (its ES module build) into the Python package's
// static/vendor/ directory, where the calling page imports it. Run after `npm ci`.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "node_modules/@hubspot/calling-extensions-sdk/dist/main.esm.js");
const target = join(here, "../src/callbridge_hubspot/static/vendor/calling-extensions-sdk.esm.js");
mkdirSync(dirname(target), { recursive: true });
copyFileSync(source, target);
console.log(`copied ${source} -> ${target}`);
