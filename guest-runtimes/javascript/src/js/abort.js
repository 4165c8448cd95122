// Defines `AbortController` and `AbortSignal`, enough for code that passes
// a signal to fetch. Default abort reasons are QuickJS's built-in `DOMException`.
//
// Evaluated on first use of a web global (see lazy.js) as a function
// expression, and called with the formatter from inspect.js and the object
// that receives the classes.
(function (util, web) {
  "use strict";

  const DOMException = globalThis.DOMException;

  // Lets only this file create signals, as `new AbortSignal()` throws in
  // browsers and Node.
  const CONSTRUCT = Symbol("AbortSignal");
  let signalAbort;

  class AbortSignal {
    #aborted = false;
    #reason = undefined;
    #listeners = [];
    #onabort = null;
    #deadline = null;

    constructor(key) {
      if (key !== CONSTRUCT) throw new TypeError("Illegal constructor: use new AbortController().signal");
    }

    static {
      signalAbort = (signal, reason) => signal.#abort(reason);
    }

    static abort(reason = undefined) {
      const signal = new AbortSignal(CONSTRUCT);
      signal.#abort(reason);
      return signal;
    }

    // NOTE: no timer backs this signal, because a pending timer would keep
    // the run alive until it fires. The signal reads as aborted once the
    // time has passed, so fetch checks it, but its listeners never run.
    static timeout(milliseconds) {
      const delay = Number(milliseconds);
      if (!Number.isFinite(delay) || delay < 0) {
        throw new TypeError(`AbortSignal.timeout: the delay must be a non-negative number of milliseconds, not ${milliseconds}`);
      }
      const signal = new AbortSignal(CONSTRUCT);
      signal.#deadline = performance.now() + delay;
      return signal;
    }

    static any(signals) {
      const combined = new AbortSignal(CONSTRUCT);
      const sources = Array.from(signals);
      const aborted = sources.find((signal) => signal.aborted);
      if (aborted !== undefined) {
        combined.#abort(aborted.reason);
        return combined;
      }
      for (const signal of sources) {
        signal.addEventListener("abort", () => combined.#abort(signal.reason), { once: true });
      }
      return combined;
    }

    #abort(reason) {
      if (this.#aborted) return;
      this.#aborted = true;
      this.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      const event = { type: "abort", target: this, currentTarget: this };
      const listeners = this.#listeners;
      this.#listeners = [];
      if (typeof this.#onabort === "function") this.#onabort.call(this, event);
      for (const { listener } of listeners) {
        if (typeof listener === "function") listener.call(this, event);
        else if (typeof listener.handleEvent === "function") listener.handleEvent(event);
      }
    }

    #checkDeadline() {
      if (this.#deadline !== null && !this.#aborted && performance.now() >= this.#deadline) {
        this.#aborted = true;
        this.#reason = new DOMException("The operation was aborted due to timeout", "TimeoutError");
      }
    }

    get aborted() {
      this.#checkDeadline();
      return this.#aborted;
    }

    get reason() {
      this.#checkDeadline();
      return this.#reason;
    }

    get onabort() {
      return this.#onabort;
    }
    set onabort(handler) {
      this.#onabort = typeof handler === "function" ? handler : null;
    }

    throwIfAborted() {
      if (this.aborted) throw this.#reason;
    }

    // The `once` option changes nothing, because a signal aborts only once
    // and drops its listeners when it does.
    addEventListener(type, listener) {
      if (`${type}` !== "abort" || listener === null || listener === undefined) return;
      if (this.#aborted || this.#listeners.some((entry) => entry.listener === listener)) return;
      this.#listeners.push({ listener });
    }

    removeEventListener(type, listener) {
      if (`${type}` !== "abort") return;
      this.#listeners = this.#listeners.filter((entry) => entry.listener !== listener);
    }

    get [Symbol.toStringTag]() {
      return "AbortSignal";
    }
  }

  class AbortController {
    #signal = new AbortSignal(CONSTRUCT);

    get signal() {
      return this.#signal;
    }

    abort(reason = undefined) {
      signalAbort(this.#signal, reason);
    }

    get [Symbol.toStringTag]() {
      return "AbortController";
    }
  }

  util.defineDisplay(AbortSignal, (signal) => ({ aborted: signal.aborted }));
  util.defineDisplay(AbortController, (controller) => ({ signal: controller.signal }));

  web.AbortSignal = AbortSignal;
  web.AbortController = AbortController;
})
