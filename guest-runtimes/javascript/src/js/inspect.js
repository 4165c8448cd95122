// Formats values for display the way Node's `util.inspect` and `util.format`
// do, in a smaller form. It uses the same notation for strings, arrays,
// objects, Map, Set, errors and cycles. It has no colours, no custom inspect
// hooks and a simpler rule for wrapping long output.
//
// Evaluated once at start-up as a function expression. It captures the
// built-ins it uses before any user code runs, so code that later replaces
// `Object.keys` or `Array.prototype.join` does not change how values print.
(function (native) {
  "use strict";

  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectGetOwnPropertyNames = Object.getOwnPropertyNames;
  const ObjectGetOwnPropertySymbols = Object.getOwnPropertySymbols;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ObjectPrototypeToString = Object.prototype.toString;
  const ObjectPrototypePropertyIsEnumerable = Object.prototype.propertyIsEnumerable;
  const FunctionPrototypeToString = Function.prototype.toString;
  const ArrayIsArray = Array.isArray;
  const ErrorPrototype = Error.prototype;
  const MapPrototypeEntries = Map.prototype.entries;
  const MapSize = ObjectGetOwnPropertyDescriptor(Map.prototype, "size").get;
  const SetPrototypeValues = Set.prototype.values;
  const SetSize = ObjectGetOwnPropertyDescriptor(Set.prototype, "size").get;
  const DatePrototypeGetTime = Date.prototype.getTime;
  const DatePrototypeToISOString = Date.prototype.toISOString;
  const RegExpPrototypeToString = RegExp.prototype.toString;
  const SymbolPrototypeToString = Symbol.prototype.toString;
  const TypedArrayPrototype = ObjectGetPrototypeOf(Uint8Array.prototype);
  const TypedArrayLength = ObjectGetOwnPropertyDescriptor(TypedArrayPrototype, "length").get;
  const ArrayBufferByteLength = ObjectGetOwnPropertyDescriptor(
    ArrayBuffer.prototype,
    "byteLength",
  ).get;
  const JSONStringify = JSON.stringify;
  const StringFn = String;
  const NumberFn = Number;
  const ReflectApply = Reflect.apply;
  const ReflectHas = Reflect.has;

  /** Maximum nesting shown before `[Object]` or `[Array]`, as in Node. */
  const DEFAULT_DEPTH = 2;
  /** Array and Map/Set entries shown before `... N more items`, as in Node. */
  const MAX_ENTRIES = 100;
  /** Single-line output longer than this many characters wraps. */
  const BREAK_LENGTH = 72;

  function call(fn, receiver, ...args) {
    return ReflectApply(fn, receiver, args);
  }

  function tag(value) {
    return call(ObjectPrototypeToString, value).slice(8, -1);
  }

  function isError(value) {
    let proto = value;
    while (proto !== null) {
      if (proto === ErrorPrototype) return true;
      proto = ObjectGetPrototypeOf(proto);
    }
    return tag(value) === "Error";
  }

  function quote(string) {
    const quoteChar = string.includes("'") && !string.includes('"') ? '"' : "'";
    let out = quoteChar;
    for (const ch of string) {
      const code = ch.codePointAt(0);
      if (ch === quoteChar || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\t") out += "\\t";
      else if (ch === "\r") out += "\\r";
      else if (code < 0x20 || code === 0x7f) {
        out += "\\x" + code.toString(16).padStart(2, "0").toUpperCase();
      } else out += ch;
    }
    return out + quoteChar;
  }

  function formatKey(key) {
    if (typeof key === "symbol") return "[" + call(SymbolPrototypeToString, key) + "]";
    if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return key;
    return quote(key);
  }

  function formatPrimitive(value) {
    switch (typeof value) {
      case "string":
        return quote(value);
      case "number":
        return Object.is(value, -0) ? "-0" : StringFn(value);
      case "bigint":
        return StringFn(value) + "n";
      case "symbol":
        return call(SymbolPrototypeToString, value);
      default:
        return StringFn(value);
    }
  }

  function constructorName(value) {
    let proto = ObjectGetPrototypeOf(value);
    while (proto !== null) {
      const descriptor = ObjectGetOwnPropertyDescriptor(proto, "constructor");
      if (descriptor && typeof descriptor.value === "function" && descriptor.value.name) {
        return descriptor.value.name;
      }
      proto = ObjectGetPrototypeOf(proto);
    }
    return null;
  }

  function formatFunction(fn) {
    let source = "";
    try {
      source = call(FunctionPrototypeToString, fn);
    } catch {
      // A revoked proxy or a host function with no source prints as a function.
    }
    const name = fn.name ? StringFn(fn.name) : "";
    if (source.startsWith("class")) {
      return name ? `[class ${name}]` : "[class (anonymous)]";
    }
    let kind = "Function";
    const functionTag = tag(fn);
    if (functionTag === "AsyncFunction") kind = "AsyncFunction";
    else if (functionTag === "GeneratorFunction") kind = "GeneratorFunction";
    else if (functionTag === "AsyncGeneratorFunction") kind = "AsyncGeneratorFunction";
    return name ? `[${kind}: ${name}]` : `[${kind} (anonymous)]`;
  }

  // Returns the stack Node would print: the `Name: message` line, then the
  // frames. QuickJS keeps only the frames in `stack`, so the first line is
  // added here unless the stack already has it.
  function errorStack(error) {
    let header;
    try {
      const name = error.name === undefined ? "Error" : StringFn(error.name);
      const message = error.message === undefined ? "" : StringFn(error.message);
      header = message ? `${name}: ${message}` : name;
    } catch {
      header = "Error";
    }
    let stack = "";
    try {
      stack = typeof error.stack === "string" ? error.stack : "";
    } catch {
      // A throwing `stack` getter leaves the header alone.
    }
    if (stack.startsWith(header)) return stack.replace(/\n+$/, "");
    const frames = stack.replace(/\n+$/, "");
    return frames ? `${header}\n${frames}` : header;
  }

  function ownKeys(value, skipIndices) {
    const keys = [];
    for (const key of ObjectGetOwnPropertyNames(value)) {
      if (skipIndices && /^(0|[1-9][0-9]*)$/.test(key)) continue;
      if (call(ObjectPrototypePropertyIsEnumerable, value, key)) keys.push(key);
    }
    for (const symbol of ObjectGetOwnPropertySymbols(value)) {
      if (call(ObjectPrototypePropertyIsEnumerable, value, symbol)) keys.push(symbol);
    }
    return keys;
  }

  function formatProperty(value, key, state, depth) {
    const descriptor = ObjectGetOwnPropertyDescriptor(value, key);
    let shown;
    if (descriptor === undefined) shown = "undefined";
    else if (descriptor.get && descriptor.set) shown = "[Getter/Setter]";
    else if (descriptor.get) shown = "[Getter]";
    else if (descriptor.set) shown = "[Setter]";
    else shown = formatValue(descriptor.value, state, depth + 1);
    return `${formatKey(key)}: ${shown}`;
  }

  // Joins entries on one line when they fit, or one entry per line with
  // two spaces of indentation. Arrays of more than six short entries are
  // packed several to a line, as Node does for arrays of numbers.
  function joinEntries(prefix, open, close, entries, state, packable) {
    if (entries.length === 0) return `${prefix}${open}${close}`;
    const oneLine = `${prefix}${open} ${entries.join(", ")} ${close}`;
    // Called while the container's children are formatted, so
    // `state.indent` already counts the container itself.
    const indent = "  ".repeat(Math.max(0, state.indent - 1));
    const multiline = entries.some((entry) => entry.includes("\n"));
    if (!multiline && oneLine.length + indent.length <= BREAK_LENGTH) return oneLine;

    const inner = indent + "  ";
    const maxWidth = Math.max(...entries.map((entry) => entry.length));
    if (packable && !multiline && entries.length > 6 && maxWidth <= 6) {
      const columns = Math.max(1, Math.min(16, Math.floor((80 - inner.length) / (maxWidth + 2))));
      const lines = [];
      for (let i = 0; i < entries.length; i += columns) {
        const row = entries.slice(i, i + columns);
        lines.push(inner + row.map((entry, j) => {
          const last = i + j === entries.length - 1;
          const cell = last ? entry : entry + ",";
          return j === row.length - 1 ? cell : cell.padStart(maxWidth + 1);
        }).join(" "));
      }
      return `${prefix}${open}\n${lines.join("\n")}\n${indent}${close}`;
    }
    return `${prefix}${open}\n${inner}${entries.join(`,\n${inner}`)}\n${indent}${close}`;
  }

  function formatValue(value, state, depth) {
    if (value === null || (typeof value !== "object" && typeof value !== "function")) {
      return formatPrimitive(value);
    }

    if (state.seen.includes(value)) {
      let id = state.circular.get(value);
      if (id === undefined) {
        id = state.circular.size + 1;
        state.circular.set(value, id);
      }
      return `[Circular *${id}]`;
    }

    const result = formatObject(value, state, depth);
    const id = state.circular.get(value);
    return id === undefined ? result : `<ref *${id}> ${result}`;
  }

  function formatObject(value, state, depth) {
    if (typeof value === "function") {
      const base = formatFunction(value);
      const keys = ownKeys(value, false).filter((key) => key !== "prototype");
      if (keys.length === 0 || depth > state.depth) return base;
      return withChildren(value, state, () =>
        joinEntries(base + " ", "{", "}", keys.map((key) => formatProperty(value, key, state, depth)), state),
      );
    }

    const name = constructorName(value);
    const objectTag = tag(value);

    if (isError(value)) {
      const keys = ownKeys(value, false).filter((key) => key !== "stack" && key !== "message");
      const stack = errorStack(value);
      if (keys.length === 0 || depth > state.depth) return stack;
      return withChildren(value, state, () =>
        joinEntries(stack + " ", "{", "}", keys.map((key) => formatProperty(value, key, state, depth)), state),
      );
    }
    if (objectTag === "Date") {
      const time = call(DatePrototypeGetTime, value);
      return time === time ? call(DatePrototypeToISOString, value) : "Invalid Date";
    }
    if (objectTag === "RegExp") return call(RegExpPrototypeToString, value);
    if (objectTag === "Promise") {
      const [stateName, result] = native.promiseState(value);
      if (stateName === "pending") return "Promise { <pending> }";
      const shown = withChildren(value, state, () => formatValue(result, state, depth + 1));
      return stateName === "rejected" ? `Promise { <rejected> ${shown} }` : `Promise { ${shown} }`;
    }
    if (objectTag === "WeakMap" || objectTag === "WeakSet" || objectTag === "WeakRef") {
      return `${objectTag} { <items unknown> }`;
    }
    if (objectTag === "Symbol" || objectTag === "Number" || objectTag === "String" ||
        objectTag === "Boolean" || objectTag === "BigInt") {
      return `[${objectTag}: ${formatPrimitive(value.valueOf())}]`;
    }
    if (objectTag === "ArrayBuffer") {
      return `ArrayBuffer { byteLength: ${call(ArrayBufferByteLength, value)} }`;
    }

    if (depth > state.depth) {
      if (ArrayIsArray(value)) return "[Array]";
      return `[${name || "Object"}]`;
    }

    const fields = displayFields(value);
    if (fields !== undefined) {
      return withChildren(value, state, () => formatContainer(fields, name, "Object", state, depth));
    }
    return withChildren(value, state, () => formatContainer(value, name, objectTag, state, depth));
  }

  // Display functions for built-in classes that keep their state in
  // private fields, such as URL and Headers, keyed by prototype. Each
  // returns a plain object whose properties are shown after the class name.
  const displays = new WeakMap();

  function defineDisplay(constructor, display) {
    displays.set(constructor.prototype, display);
  }

  function displayFields(value) {
    let proto = ObjectGetPrototypeOf(value);
    while (proto !== null) {
      const display = displays.get(proto);
      if (display !== undefined) {
        try {
          return display(value);
        } catch {
          // A prototype or a foreign object without the private fields
          // prints like any other object.
          return undefined;
        }
      }
      proto = ObjectGetPrototypeOf(proto);
    }
    return undefined;
  }

  function formatContainer(value, name, objectTag, state, depth) {
    const entries = [];
    let prefix;
    let open = "{";
    let close = "}";
    let packable = false;

    if (ArrayIsArray(value)) {
      const length = value.length;
      prefix = name === "Array" ? "" : `${name || "[Array: null prototype]"}(${length}) `;
      open = "[";
      close = "]";
      packable = true;
      let holes = 0;
      const shown = Math.min(length, MAX_ENTRIES);
      for (let i = 0; i < shown; i++) {
        if (!ReflectHas(value, i)) {
          holes++;
          continue;
        }
        if (holes) {
          entries.push(`<${holes} empty item${holes > 1 ? "s" : ""}>`);
          holes = 0;
        }
        entries.push(formatValue(value[i], state, depth + 1));
      }
      if (holes) entries.push(`<${holes} empty item${holes > 1 ? "s" : ""}>`);
      if (length > shown) entries.push(`... ${length - shown} more item${length - shown > 1 ? "s" : ""}`);
      for (const key of ownKeys(value, true)) {
        if (key !== "length") entries.push(formatProperty(value, key, state, depth));
      }
    } else if (objectTag === "Map") {
      prefix = `${name || "Map"}(${call(MapSize, value)}) `;
      let count = 0;
      for (const [key, item] of call(MapPrototypeEntries, value)) {
        if (count++ === MAX_ENTRIES) {
          entries.push(`... more items`);
          break;
        }
        entries.push(`${formatValue(key, state, depth + 1)} => ${formatValue(item, state, depth + 1)}`);
      }
    } else if (objectTag === "Set") {
      prefix = `${name || "Set"}(${call(SetSize, value)}) `;
      let count = 0;
      for (const item of call(SetPrototypeValues, value)) {
        if (count++ === MAX_ENTRIES) {
          entries.push(`... more items`);
          break;
        }
        entries.push(formatValue(item, state, depth + 1));
      }
    } else if (ArrayBuffer.isView(value) && objectTag !== "DataView") {
      const length = call(TypedArrayLength, value);
      prefix = `${name || objectTag}(${length}) `;
      open = "[";
      close = "]";
      packable = true;
      const shown = Math.min(length, MAX_ENTRIES);
      for (let i = 0; i < shown; i++) entries.push(formatPrimitive(value[i]));
      if (length > shown) entries.push(`... ${length - shown} more items`);
    } else {
      if (name === null) prefix = "[Object: null prototype] ";
      else if (name === "Object") prefix = objectTag === "Object" ? "" : `Object [${objectTag}] `;
      else prefix = `${name} `;
      if (name && objectTag !== "Object" && objectTag !== name && name !== "Object") {
        prefix = `${name} [${objectTag}] `;
      }
    }

    if (!ArrayIsArray(value)) {
      const skipIndices = ArrayBuffer.isView(value);
      for (const key of ownKeys(value, skipIndices)) {
        entries.push(formatProperty(value, key, state, depth));
      }
    }
    return joinEntries(prefix, open, close, entries, state, packable);
  }

  function withChildren(value, state, body) {
    state.seen.push(value);
    state.indent++;
    try {
      return body();
    } finally {
      state.indent--;
      state.seen.pop();
    }
  }

  function inspect(value, options) {
    let depth = DEFAULT_DEPTH;
    if (options && typeof options === "object" && options.depth !== undefined) {
      depth = options.depth === null ? Infinity : NumberFn(options.depth);
    }
    const state = { seen: [], circular: new Map(), indent: 0, depth };
    return formatValue(value, state, 0);
  }

  // Formats console arguments like `util.format`: printf-style directives
  // in a first string argument, then the rest joined by spaces with strings
  // shown raw and other values inspected.
  function format(...args) {
    let out = "";
    let next = 0;
    if (typeof args[0] === "string") {
      const template = args[0];
      next = 1;
      let last = 0;
      for (let i = 0; i < template.length - 1; i++) {
        if (template[i] !== "%") continue;
        const directive = template[i + 1];
        let piece;
        if (directive === "%") {
          piece = "%";
        } else if (next >= args.length || !"sdifjoOc".includes(directive)) {
          continue;
        } else {
          const arg = args[next++];
          if (directive === "s") {
            piece = typeof arg === "string" ? arg : typeof arg === "bigint" ? `${arg}n`
              : (arg !== null && typeof arg === "object") ? inspect(arg, { depth: 1 }) : formatPrimitive(arg);
            if (typeof arg === "symbol" || arg === undefined || arg === null || typeof arg === "number") {
              piece = typeof arg === "number" ? formatPrimitive(arg) : StringFn(arg);
            }
          } else if (directive === "d" || directive === "i") {
            if (typeof arg === "bigint") piece = `${arg}n`;
            else if (typeof arg === "symbol") piece = "NaN";
            else {
              const number = directive === "i" ? parseInt(arg) : NumberFn(arg);
              piece = formatPrimitive(number);
            }
          } else if (directive === "f") {
            piece = typeof arg === "symbol" ? "NaN" : formatPrimitive(parseFloat(arg));
          } else if (directive === "j") {
            try {
              piece = JSONStringify(arg);
            } catch {
              piece = "[Circular]";
            }
          } else if (directive === "c") {
            piece = "";
          } else {
            piece = inspect(arg, { depth: directive === "o" ? 4 : DEFAULT_DEPTH });
          }
        }
        out += template.slice(last, i) + piece;
        last = i + 2;
        i++;
      }
      out += template.slice(last);
    }
    for (; next < args.length; next++) {
      const arg = args[next];
      if (out !== "" || next > 0) out += " ";
      out += typeof arg === "string" ? arg : inspect(arg);
    }
    return out;
  }

  return { inspect, format, errorStack, defineDisplay };
})
