// Makes `npx strands` run this checkout's broker: npm links the bins of
// dependencies into node_modules/.bin, but never the project's own.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const target = path.join(root, 'dist', 'src', 'main.js');
const binDir = path.join(root, 'node_modules', '.bin');
fs.chmodSync(target, 0o755);
fs.mkdirSync(binDir, { recursive: true });
const link = path.join(binDir, 'strands');
fs.rmSync(link, { force: true });
fs.symlinkSync(path.relative(binDir, target), link);
