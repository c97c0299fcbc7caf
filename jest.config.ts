import type { Config } from 'jest';

// inversify 8 ships ESM only; ts-jest (allowJs) transpiles it to CommonJS for Jest's module system.
// Code 151002 is ts-jest's "hybrid module kind" notice for `module: node20`, which is what we want.
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]sx?$': ['ts-jest', { tsconfig: { allowJs: true }, diagnostics: { ignoreCodes: [151002] } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(inversify|@inversifyjs)/)'],
  testTimeout: 30_000,
};

export default config;
