/**
 * {@link CallQueue}: calls run one at a time, in the order they were asked for.
 *
 * @internal
 * @module
 */

/** Runs calls one at a time in the order asked for; with none pending, a call starts at once. */
export class CallQueue {
  /** The settling of the last call asked for, while one is pending. */
  #last: Promise<void> | undefined;
  readonly #onIdle: (() => void) | undefined;

  /** @param onIdle called each time the last pending call settles */
  constructor(onIdle?: () => void) {
    this.#onIdle = onIdle;
  }

  /** Whether a call is queued or in flight. */
  get busy(): boolean {
    return this.#last !== undefined;
  }

  /** Runs `call` once every call asked for before it has settled; its result (or failure). */
  run<T>(call: () => T | Promise<T>): Promise<T> {
    const previous = this.#last;
    const result = previous ? previous.then(call) : (async () => await call())();
    const settled = result.then(
      () => {},
      () => {},
    );
    this.#last = settled;
    void settled.then(() => {
      if (this.#last !== settled) return;
      this.#last = undefined;
      this.#onIdle?.();
    });
    return result;
  }
}
