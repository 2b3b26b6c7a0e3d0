// An independent TUF client for the interoperability tests: tuf-js (the npm package, not
// otter) refreshes against a repository and downloads targets.
//
//   node tufjs-client.js METADATA_URL TARGETS_URL METADATA_DIR TARGET_DIR TRUSTED_ROOT [TARGET...]
//
// TRUSTED_ROOT becomes METADATA_DIR/root.json unless the folder holds one already (a client
// that updated before keeps its newer root). Prints one JSON line: {"ok": true, "versions":
// {...}, "targets": {path: local file}}; on failure {"ok": false, "error": "..."} and exit 1.
// A target no role lists is a failure too. NODE_PATH must find tuf-js.
'use strict';

const fs = require('fs');
const path = require('path');
const { Updater } = require('tuf-js');

async function main() {
  const [metadataUrl, targetsUrl, metadataDir, targetDir, trustedRoot, ...targets] =
    process.argv.slice(2);
  if (!trustedRoot) {
    throw new Error('usage: tufjs-client.js METADATA_URL TARGETS_URL METADATA_DIR TARGET_DIR ' +
                    'TRUSTED_ROOT [TARGET...]');
  }
  fs.mkdirSync(metadataDir, { recursive: true });
  fs.mkdirSync(targetDir, { recursive: true });
  const rootPath = path.join(metadataDir, 'root.json');
  if (!fs.existsSync(rootPath)) {
    fs.copyFileSync(trustedRoot, rootPath);
  }
  const updater = new Updater({
    metadataBaseUrl: metadataUrl,
    targetBaseUrl: targetsUrl,
    metadataDir,
    targetDir,
  });
  await updater.refresh();
  const out = { ok: true, versions: {}, targets: {} };
  for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
    const file = path.join(metadataDir, `${role}.json`);
    if (fs.existsSync(file)) {
      out.versions[role] = JSON.parse(fs.readFileSync(file, 'utf8')).signed.version;
    }
  }
  for (const target of targets) {
    const info = await updater.getTargetInfo(target);
    if (!info) {
      throw new Error(`no trusted role lists target '${target}'`);
    }
    const local = path.join(targetDir, encodeURIComponent(target));
    out.targets[target] = await updater.downloadTarget(info, local);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) }) + '\n');
  process.exit(1);
});
