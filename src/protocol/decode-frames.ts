import { OperatorFunction, defer } from 'rxjs';
import { flatMapSync } from '../operators/flat-map-sync';
import { Frame } from './frame';
import { FrameDecoder } from './frame-decoder';

/** Bytes in, frames out; one decoder per subscription, so its carried-over bytes are per connection. */
export const decodeFrames =
  (decoderOrMaxLine: FrameDecoder | number): OperatorFunction<Buffer, Frame> =>
  (bytes$) =>
    defer(() => {
      const decoder = typeof decoderOrMaxLine === 'number' ? new FrameDecoder(decoderOrMaxLine) : decoderOrMaxLine;
      return bytes$.pipe(flatMapSync((chunk) => decoder.push(chunk)));
    });
