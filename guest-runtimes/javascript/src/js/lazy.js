// Defines the web globals (URL, fetch, AbortController and the rest) as
// accessors. The first read of any of them evaluates url.js, abort.js and
// fetch.js through `load`, then replaces every accessor that is still in
// place with the real class. A global that code assigns first keeps the
// assigned value.
//
// Evaluated once at start-up as a function expression and called with the
// native loader and the list of names.
(function (load, names) {
  "use strict";

  const define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  const getters = new Map();

  function resolve(name) {
    const web = load();
    for (const [other, getter] of getters) {
      const descriptor = Object.getOwnPropertyDescriptor(globalThis, other);
      if (descriptor !== undefined && descriptor.get === getter) define(other, web[other]);
    }
    return web[name];
  }

  for (const name of names) {
    const get = () => resolve(name);
    getters.set(name, get);
    Object.defineProperty(globalThis, name, {
      get,
      set: (value) => define(name, value),
      configurable: true,
      enumerable: false,
    });
  }
})
