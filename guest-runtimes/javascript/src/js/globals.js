// Installs the Node-like globals the guest offers on top of QuickJS:
// console, timers, process, TextEncoder/TextDecoder, structuredClone, fs and
// require.
//
// Evaluated once at start-up as a function expression and called with the
// native functions from the Rust side and the formatter from inspect.js.
// Neither argument stays reachable from user code.
(function (native, util) {
  "use strict";

  const { inspect, format } = util;
  const define = (target, name, value) =>
    Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });

  // --- console ---------------------------------------------------------

  const STDOUT = 1;
  const STDERR = 2;
  let groupIndent = "";
  const counts = new Map();
  const timers = new Map();

  function print(fd, args) {
    let text = format(...args);
    if (groupIndent) text = groupIndent + text.split("\n").join("\n" + groupIndent);
    native.write(fd, text + "\n");
  }

  const console = {
    log: (...args) => print(STDOUT, args),
    info: (...args) => print(STDOUT, args),
    debug: (...args) => print(STDOUT, args),
    warn: (...args) => print(STDERR, args),
    error: (...args) => print(STDERR, args),
    dir: (value, options) => print(STDOUT, [inspect(value, options)]),
    trace: (...args) => {
      const frames = (new Error().stack || "").split("\n").slice(1).join("\n");
      print(STDERR, [`Trace: ${format(...args)}\n${frames}`.replace(/\n+$/, "")]);
    },
    assert: (condition, ...args) => {
      if (!condition) print(STDERR, args.length ? ["Assertion failed:", ...args] : ["Assertion failed"]);
    },
    count: (label = "default") => {
      const count = (counts.get(label) || 0) + 1;
      counts.set(label, count);
      print(STDOUT, [`${label}: ${count}`]);
    },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timers.set(label, performance.now()),
    timeLog: (label = "default", ...args) => {
      if (timers.has(label)) print(STDOUT, [`${label}: ${(performance.now() - timers.get(label)).toFixed(3)}ms`, ...args]);
    },
    timeEnd: (label = "default") => {
      if (!timers.has(label)) return;
      print(STDOUT, [`${label}: ${(performance.now() - timers.get(label)).toFixed(3)}ms`]);
      timers.delete(label);
    },
    group: (...args) => {
      if (args.length) print(STDOUT, args);
      groupIndent += "  ";
    },
    groupEnd: () => {
      groupIndent = groupIndent.slice(2);
    },
    table: (data) => print(STDOUT, [data]),
  };
  console.groupCollapsed = console.group;
  define(globalThis, "console", console);

  // --- timers ----------------------------------------------------------

  // Extra arguments are bound here, so the Rust timer queue stores one
  // function per timer. Ids are numbers, not Node's Timeout objects.
  function bind(callback, args) {
    if (typeof callback !== "function") {
      throw new TypeError('The "callback" argument must be of type function');
    }
    return args.length ? () => callback(...args) : callback;
  }

  define(globalThis, "setTimeout", (callback, delay, ...args) =>
    native.setTimer(bind(callback, args), Number(delay) || 0, false));
  define(globalThis, "setInterval", (callback, delay, ...args) =>
    native.setTimer(bind(callback, args), Number(delay) || 0, true));
  define(globalThis, "setImmediate", (callback, ...args) =>
    native.setTimer(bind(callback, args), 0, false));
  define(globalThis, "clearTimeout", (id) => native.clearTimer(Number(id)));
  define(globalThis, "clearInterval", (id) => native.clearTimer(Number(id)));
  define(globalThis, "clearImmediate", (id) => native.clearTimer(Number(id)));

  // --- process ---------------------------------------------------------

  const process = {
    argv: [],
    env: {},
    platform: "wasi",
    version: "",
    versions: {},
    exitCode: undefined,
    // Ends the current `run` through an error that try/catch cannot catch
    // and that skips finally blocks. The Rust side records the code first,
    // so the exit also wins when the error is swallowed by a promise.
    exit(code) {
      const status = code === undefined ? (process.exitCode ?? 0) : code;
      native.exit(Number(status) | 0);
    },
    cwd: () => "/workspace",
    nextTick: (callback, ...args) => queueMicrotask(bind(callback, args)),
    hrtime: Object.assign(
      (previous) => {
        const nanos = BigInt(Math.round(performance.now() * 1e6));
        const now = [Number(nanos / 1000000000n), Number(nanos % 1000000000n)];
        if (!previous) return now;
        let seconds = now[0] - previous[0];
        let remainder = now[1] - previous[1];
        if (remainder < 0) {
          seconds--;
          remainder += 1e9;
        }
        return [seconds, remainder];
      },
      { bigint: () => BigInt(Math.round(performance.now() * 1e6)) },
    ),
    stdout: { write: (text) => (native.write(STDOUT, String(text)), true) },
    stderr: { write: (text) => (native.write(STDERR, String(text)), true) },
  };
  define(globalThis, "process", process);

  // --- text ------------------------------------------------------------

  function isUtf8Label(label) {
    const name = String(label).trim().toLowerCase();
    return name === "utf-8" || name === "utf8" || name === "unicode-1-1-utf-8";
  }

  function toBytes(input) {
    if (input instanceof Uint8Array) return input;
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw new TypeError("The \"input\" argument must be an ArrayBuffer or an ArrayBufferView");
  }

  // Replaces lone surrogates with U+FFFD, as the Encoding standard requires,
  // before the string crosses into Rust as UTF-8.
  function wellFormed(text) {
    return typeof text.toWellFormed === "function" ? text.toWellFormed() : text;
  }

  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return native.utf8Encode(wellFormed(String(input)));
    }
    encodeInto(source, destination) {
      let read = 0;
      let written = 0;
      for (const ch of String(source)) {
        const bytes = native.utf8Encode(wellFormed(ch));
        if (written + bytes.length > destination.length) break;
        destination.set(bytes, written);
        written += bytes.length;
        read += ch.length;
      }
      return { read, written };
    }
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      if (!isUtf8Label(label)) {
        throw new RangeError(`The "${label}" encoding is not supported`);
      }
      this.#fatal = Boolean(options.fatal);
      this.#ignoreBOM = Boolean(options.ignoreBOM);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input = new Uint8Array(0)) {
      return native.utf8Decode(toBytes(input), this.#fatal, this.#ignoreBOM);
    }
  }

  define(globalThis, "TextEncoder", TextEncoder);
  define(globalThis, "TextDecoder", TextDecoder);

  // --- structuredClone -------------------------------------------------

  function cloneError(message) {
    return typeof DOMException === "function"
      ? new DOMException(message, "DataCloneError")
      : new TypeError(message);
  }

  // Copies plain data the way the HTML structured clone algorithm does for
  // the common types: primitives, plain objects, arrays, Date, RegExp, Map,
  // Set, ArrayBuffer, typed arrays and Error, keeping shared references and
  // cycles. Functions and symbols are rejected with a DataCloneError.
  function structuredClone(value) {
    const copies = new Map();
    const clone = (input) => {
      if (typeof input === "function" || typeof input === "symbol") {
        throw cloneError(`${typeof input === "function" ? "function" : "symbol"} could not be cloned`);
      }
      if (input === null || typeof input !== "object") return input;
      if (copies.has(input)) return copies.get(input);
      let output;
      if (Array.isArray(input)) {
        output = [];
        copies.set(input, output);
        for (let i = 0; i < input.length; i++) output[i] = clone(input[i]);
        return output;
      }
      if (input instanceof Date) output = new Date(input.getTime());
      else if (input instanceof RegExp) output = new RegExp(input.source, input.flags);
      else if (input instanceof ArrayBuffer) output = input.slice(0);
      else if (ArrayBuffer.isView(input)) {
        output = new input.constructor(clone(input.buffer), input.byteOffset, input.length ?? input.byteLength);
      } else if (input instanceof Map) {
        output = new Map();
        copies.set(input, output);
        for (const [key, item] of input) output.set(clone(key), clone(item));
        return output;
      } else if (input instanceof Set) {
        output = new Set();
        copies.set(input, output);
        for (const item of input) output.add(clone(item));
        return output;
      } else if (input instanceof Error) {
        output = new Error(input.message);
        output.name = input.name;
        output.stack = input.stack;
      } else if (input instanceof Promise || input instanceof WeakMap || input instanceof WeakSet) {
        throw cloneError(`${Object.prototype.toString.call(input).slice(8, -1)} object could not be cloned`);
      } else {
        output = {};
        copies.set(input, output);
        for (const key of Object.keys(input)) output[key] = clone(input[key]);
        return output;
      }
      copies.set(input, output);
      return output;
    };
    return clone(value);
  }

  if (typeof globalThis.structuredClone !== "function") {
    define(globalThis, "structuredClone", structuredClone);
  }

  // --- fs --------------------------------------------------------------

  function pathArgument(path, name = "path") {
    if (typeof path === "string") return path;
    if (typeof URL === "function" && path instanceof URL) return decodeURIComponent(path.pathname);
    if (path instanceof Uint8Array) return native.utf8Decode(path, false, true);
    const error = new TypeError(`The "${name}" argument must be of type string. Received ${inspect(path)}`);
    error.code = "ERR_INVALID_ARG_TYPE";
    throw error;
  }

  function encodingOption(options) {
    const encoding = typeof options === "string" ? options : options?.encoding;
    return encoding == null ? null : String(encoding).toLowerCase();
  }

  function decodeBytes(bytes, encoding) {
    switch (encoding) {
      case null:
      case "buffer":
        return bytes;
      case "utf8":
      case "utf-8":
        return native.utf8Decode(bytes, false, true);
      case "latin1":
      case "binary":
      case "ascii": {
        let text = "";
        for (let i = 0; i < bytes.length; i += 8192) {
          text += String.fromCharCode(...bytes.subarray(i, i + 8192));
        }
        return encoding === "ascii" ? text.replace(/[\x80-\xff]/g, (c) => String.fromCharCode(c.charCodeAt(0) & 0x7f)) : text;
      }
      case "base64":
        return btoa(decodeBytes(bytes, "latin1"));
      case "hex":
        return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
      default: {
        const error = new TypeError(`The argument 'encoding' is invalid encoding. Received '${encoding}'`);
        error.code = "ERR_INVALID_ARG_VALUE";
        throw error;
      }
    }
  }

  function dataBytes(data) {
    if (typeof data === "string") return native.utf8Encode(wellFormed(data));
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return toBytes(data);
    const error = new TypeError(
      `The "data" argument must be of type string or an instance of Uint8Array. Received ${inspect(data)}`,
    );
    error.code = "ERR_INVALID_ARG_TYPE";
    throw error;
  }

  class Stats {
    constructor(raw) {
      Object.assign(this, {
        size: raw.size,
        mode: raw.mode,
        atimeMs: raw.atimeMs,
        mtimeMs: raw.mtimeMs,
        ctimeMs: raw.mtimeMs,
        birthtimeMs: raw.birthtimeMs,
      });
      define(this, "kind", raw.kind);
    }
    get atime() {
      return new Date(this.atimeMs);
    }
    get mtime() {
      return new Date(this.mtimeMs);
    }
    get ctime() {
      return new Date(this.ctimeMs);
    }
    get birthtime() {
      return new Date(this.birthtimeMs);
    }
    isFile() {
      return this.kind === "file";
    }
    isDirectory() {
      return this.kind === "directory";
    }
    isSymbolicLink() {
      return this.kind === "symlink";
    }
  }

  class Dirent {
    constructor(name, parentPath, kind) {
      this.name = name;
      this.parentPath = parentPath;
      define(this, "kind", kind);
    }
    isFile() {
      return this.kind === "file";
    }
    isDirectory() {
      return this.kind === "directory";
    }
    isSymbolicLink() {
      return this.kind === "symlink";
    }
  }

  const fs = {
    readFileSync(path, options) {
      const encoding = encodingOption(options);
      const target = pathArgument(path);
      if (encoding === "utf8" || encoding === "utf-8") return native.fsReadText(target);
      return decodeBytes(native.fsRead(target), encoding);
    },
    writeFileSync(path, data, options) {
      const flag = typeof options === "object" && options !== null ? options.flag : undefined;
      native.fsWrite(pathArgument(path), dataBytes(data), flag === "a" || flag === "a+");
    },
    appendFileSync(path, data) {
      native.fsWrite(pathArgument(path), dataBytes(data), true);
    },
    existsSync(path) {
      try {
        return native.fsExists(pathArgument(path));
      } catch {
        return false;
      }
    },
    readdirSync(path, options) {
      const target = pathArgument(path);
      const names = native.fsReadDir(target);
      if (!options || typeof options !== "object" || !options.withFileTypes) return names;
      return names.map((name) => new Dirent(name, target, native.fsStat(`${target}/${name}`, false).kind));
    },
    mkdirSync(path, options) {
      const recursive = typeof options === "object" && options !== null && Boolean(options.recursive);
      native.fsMkdir(pathArgument(path), recursive);
    },
    statSync(path, options) {
      const target = pathArgument(path);
      if (options && options.throwIfNoEntry === false && !native.fsExists(target)) return undefined;
      return new Stats(native.fsStat(target, true));
    },
    lstatSync(path) {
      return new Stats(native.fsStat(pathArgument(path), false));
    },
    unlinkSync(path) {
      native.fsUnlink(pathArgument(path));
    },
    rmdirSync(path, options) {
      native.fsRm(pathArgument(path), Boolean(options?.recursive), false, true);
    },
    rmSync(path, options) {
      native.fsRm(pathArgument(path), Boolean(options?.recursive), Boolean(options?.force), false);
    },
    renameSync(from, to) {
      native.fsRename(pathArgument(from, "oldPath"), pathArgument(to, "newPath"));
    },
    copyFileSync(from, to) {
      native.fsWrite(pathArgument(to, "dest"), native.fsRead(pathArgument(from, "src")), false);
    },
  };

  // The promise API runs the synchronous calls, because WASI 0.2 file
  // access through Rust std is blocking anyway.
  const promiseNames = {
    readFile: "readFileSync", writeFile: "writeFileSync", appendFile: "appendFileSync",
    readdir: "readdirSync", mkdir: "mkdirSync", stat: "statSync", lstat: "lstatSync",
    unlink: "unlinkSync", rmdir: "rmdirSync", rm: "rmSync", rename: "renameSync",
    copyFile: "copyFileSync",
  };
  const promises = {};
  for (const [name, syncName] of Object.entries(promiseNames)) {
    promises[name] = async (...args) => fs[syncName](...args);
  }
  promises.access = async (path) => {
    fs.statSync(path);
  };
  fs.promises = promises;
  define(globalThis, "fs", fs);

  // --- require ---------------------------------------------------------

  const builtins = {
    fs,
    "fs/promises": promises,
    util: { inspect, format },
    process,
  };

  define(globalThis, "require", (name) => {
    const key = String(name).replace(/^node:/, "");
    if (Object.hasOwn(builtins, key)) return builtins[key];
    const error = new Error(`Cannot find module '${name}'`);
    error.code = "MODULE_NOT_FOUND";
    throw error;
  });
})
