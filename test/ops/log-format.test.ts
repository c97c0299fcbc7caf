import { chooseLogFormat } from '../../src/logging/logger';

describe('chooseLogFormat', () => {
  test('readable lines on a terminal, JSON otherwise, unless the config says', () => {
    expect(chooseLogFormat(undefined, true)).toBe('pretty');
    expect(chooseLogFormat(undefined, false)).toBe('json');
    expect(chooseLogFormat('json', true)).toBe('json');
    expect(chooseLogFormat('pretty', false)).toBe('pretty');
  });
});
