import './support/fail-fast';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { FlowControl } from '../../../src/session/flow-control';

/** A stream standing in for the socket: FlowControl only pauses, resumes and reads `destroyed`. */
const socketLike = () => {
  const socket = new PassThrough();
  const pause = jest.spyOn(socket, 'pause');
  const resume = jest.spyOn(socket, 'resume');
  return { socket, pause, resume };
};

describe('FlowControl.hold', () => {
  test('the first hold pauses the socket, the last release resumes it', () => {
    const { socket, pause, resume } = socketLike();
    const flow = new FlowControl(socket);
    expect(flow.paused).toBe(false);
    const first = flow.hold();
    const second = flow.hold();
    expect(pause).toHaveBeenCalledTimes(1);
    expect(flow.paused).toBe(true);
    first();
    expect(resume).not.toHaveBeenCalled();
    expect(flow.paused).toBe(true);
    second();
    expect(resume).toHaveBeenCalledTimes(1);
    expect(flow.paused).toBe(false);
    expect(socket.isPaused()).toBe(false);
  });

  test('a release called twice counts once: another hold keeps the socket paused', () => {
    const { socket, resume } = socketLike();
    const flow = new FlowControl(socket);
    const first = flow.hold();
    const second = flow.hold();
    first();
    first();
    expect(resume).not.toHaveBeenCalled();
    expect(flow.paused).toBe(true);
    second();
    expect(flow.paused).toBe(false);
    expect(resume).toHaveBeenCalledTimes(1);
  });

  test('holds taken are counted, releases do not uncount them', () => {
    const { socket } = socketLike();
    const flow = new FlowControl(socket);
    expect(flow.holdsTaken).toBe(0);
    flow.hold()();
    flow.hold();
    expect(flow.holdsTaken).toBe(2);
  });

  test('a destroyed socket is not resumed', () => {
    const { socket, resume } = socketLike();
    const flow = new FlowControl(socket);
    const release = flow.hold();
    socket.destroy();
    release();
    expect(resume).not.toHaveBeenCalled();
    expect(flow.paused).toBe(false);
  });

  test('after a full release, a new hold pauses again', () => {
    const { socket, pause } = socketLike();
    const flow = new FlowControl(socket);
    flow.hold()();
    flow.hold();
    expect(pause).toHaveBeenCalledTimes(2);
    expect(socket.isPaused()).toBe(true);
  });
});

describe('FlowControl.holdUntilDrained', () => {
  test.each(['drain', 'finish', 'error', 'close'])('holds until the writable emits %s, then lets go of it', (event) => {
    const { socket } = socketLike();
    const flow = new FlowControl(socket);
    const writable = new EventEmitter();
    flow.holdUntilDrained(writable);
    expect(flow.paused).toBe(true);
    writable.emit(event, new Error('only for error'));
    expect(flow.paused).toBe(false);
    for (const name of ['drain', 'finish', 'error', 'close']) expect(writable.listenerCount(name)).toBe(0);
  });

  test('one hold per writable: a second call while it is full adds nothing', () => {
    const { socket, resume } = socketLike();
    const flow = new FlowControl(socket);
    const writable = new EventEmitter();
    flow.holdUntilDrained(writable);
    flow.holdUntilDrained(writable);
    expect(flow.holdsTaken).toBe(1);
    expect(writable.listenerCount('drain')).toBe(1);
    writable.emit('drain');
    expect(flow.paused).toBe(false);
    expect(resume).toHaveBeenCalledTimes(1);
  });

  test('once drained, the same writable can be waited for again', () => {
    const { socket } = socketLike();
    const flow = new FlowControl(socket);
    const writable = new EventEmitter();
    flow.holdUntilDrained(writable);
    writable.emit('drain');
    flow.holdUntilDrained(writable);
    expect(flow.paused).toBe(true);
    expect(flow.holdsTaken).toBe(2);
    writable.emit('finish');
    expect(flow.paused).toBe(false);
  });

  test('two writables hold independently', () => {
    const { socket } = socketLike();
    const flow = new FlowControl(socket);
    const a = new EventEmitter();
    const b = new EventEmitter();
    flow.holdUntilDrained(a);
    flow.holdUntilDrained(b);
    a.emit('drain');
    expect(flow.paused).toBe(true);
    b.emit('close');
    expect(flow.paused).toBe(false);
  });
});
