// ESLint flat config: typescript-eslint's recommended rules over the whole tree.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "coverage/**", "bench/results.json"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { process: "readonly", console: "readonly" } },
    rules: {
      // Kernel names (snake_case, struct-named classes) are the point of this codebase.
      camelcase: "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-this-alias": "off",
      // Emulated code must not read host time or randomness (ARCHITECTURE.md §3).
      "no-restricted-properties": ["error",
        { object: "Math", property: "random", message: "use the machine's seeded prandom state" },
        { object: "Date", property: "now", message: "use the machine's virtual clock" }],
    },
  },
  {
    files: ["kernel/**", "lib/**", "mm/**", "drivers/**", "iommu/**", "arch/**", "hw/**"],
    rules: {
      "no-restricted-globals": ["error", "setTimeout", "setInterval", "setImmediate"],
    },
  },
);
