// String.prototype.isWellFormed / toWellFormed (ES2024) exist in Node 20's V8; TypeScript's ES2022 lib lacks them.
interface String {
  isWellFormed(): boolean;
  toWellFormed(): string;
}
