import type { Config } from 'jest';

// inversify 8 ships ESM only; ts-jest (allowJs) transpiles it to CommonJS for Jest's module system.
// tsconfig.json sets `isolatedModules`, so ts-jest only transpiles each file, one at a time: checking
// the types of every test file in a language service of its own cost ≈ 2.7 s of CPU per suite (12
// protocol suites from a cold cache: 43 s of CPU against 10 s). `npm test` type-checks the whole
// project once with tsc before Jest starts. Jest's module system is CommonJS, so the tests are emitted
// as CommonJS (with `module: node20`, a test's `import()` would stay a native dynamic import, which
// Jest refuses without --experimental-vm-modules).
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]sx?$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', moduleResolution: 'node10' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(inversify|@inversifyjs)/)'],
  testTimeout: 30_000,
  globalSetup: '<rootDir>/test/global-setup.ts',
  // Three test files at a time on this 2-core machine: most of the suite waits on real server and CLI
  // processes, sockets, timers and disks, so they overlap well (measured: one worker 622 s, two 332 s;
  // without Ceph, two 268 s, three 214–236 s, two full runs each clean). Jest's default here is one
  // (cores − 1). No test asserts a duration, so sharing the CPU is safe.
  maxWorkers: 3,
};

export default config;
