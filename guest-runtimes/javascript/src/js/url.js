// Defines the WHATWG `URL` and `URLSearchParams` classes. Parsing, the
// component setters and the application/x-www-form-urlencoded coding run in
// Rust with the url crate (src/url.rs). This file keeps the objects, the
// live link between a URL and its `searchParams`, and the argument
// conversions that Web IDL prescribes.
//
// Evaluated on first use of a web global (see lazy.js) as a function
// expression, and called with the native functions, the formatter from
// inspect.js and the object that receives the classes.
(function (native, util, web) {
  "use strict";

  // Positions in the component array that native.urlParse and
  // native.urlSet return.
  const HREF = 0;
  const ORIGIN = 1;
  const PROTOCOL = 2;
  const USERNAME = 3;
  const PASSWORD = 4;
  const HOST = 5;
  const HOSTNAME = 6;
  const PORT = 7;
  const PATHNAME = 8;
  const SEARCH = 9;
  const HASH = 10;

  // Converts an argument to a USVString: `${}` throws a TypeError for a
  // symbol, as Web IDL does, and lone surrogates become U+FFFD so the
  // string crosses into Rust as valid UTF-8.
  function usv(value) {
    return `${value}`.toWellFormed();
  }

  function requireArguments(count, needed, method) {
    if (count < needed) {
      throw new TypeError(`${method} requires ${needed} argument${needed > 1 ? "s" : ""}, but only ${count} ${count === 1 ? "was" : "were"} given`);
    }
  }

  function invalidUrl(input, base, reason) {
    const against = base === undefined ? "" : ` against base '${base}'`;
    const error = new TypeError(`Invalid URL '${input}'${against}: ${reason}`);
    error.code = "ERR_INVALID_URL";
    error.input = input;
    if (base !== undefined) error.base = base;
    return error;
  }

  // Set inside the class bodies below so that each class can reach the
  // other's private state without exposing it to user code.
  let attachParams;
  let replaceParams;
  let writeQuery;

  class URLSearchParams {
    #list = [];
    #url = null;

    constructor(init = "") {
      if (init instanceof URLSearchParams) {
        this.#list = init.#list.map(([name, value]) => [name, value]);
      } else if ((typeof init === "object" && init !== null) || typeof init === "function") {
        const iterate = init[Symbol.iterator];
        if (iterate !== undefined && iterate !== null) {
          if (typeof iterate !== "function") {
            throw new TypeError("URLSearchParams: the init object's Symbol.iterator is not a function");
          }
          for (const pair of init) {
            const items = (typeof pair === "object" && pair !== null) || typeof pair === "function"
              ? Array.from(pair)
              : null;
            if (items === null || items.length !== 2) {
              throw new TypeError("URLSearchParams: each pair in the init sequence must contain exactly two items, a name and a value");
            }
            this.#list.push([usv(items[0]), usv(items[1])]);
          }
        } else {
          for (const key of Object.keys(init)) this.#list.push([usv(key), usv(init[key])]);
        }
      } else {
        let query = usv(init);
        if (query.startsWith("?")) query = query.slice(1);
        this.#list = parseQuery(query);
      }
    }

    static {
      attachParams = (params, url) => {
        params.#url = url;
      };
      replaceParams = (params, search) => {
        params.#list = parseQuery(search.startsWith("?") ? search.slice(1) : search);
      };
    }

    // Writes the list back to the URL this object belongs to, if any.
    #update() {
      if (this.#url !== null) writeQuery(this.#url, this.toString());
    }

    get size() {
      return this.#list.length;
    }

    append(name, value) {
      requireArguments(arguments.length, 2, "URLSearchParams.append");
      this.#list.push([usv(name), usv(value)]);
      this.#update();
    }

    delete(name, value) {
      requireArguments(arguments.length, 1, "URLSearchParams.delete");
      const key = usv(name);
      if (value === undefined) {
        this.#list = this.#list.filter((entry) => entry[0] !== key);
      } else {
        const match = usv(value);
        this.#list = this.#list.filter((entry) => entry[0] !== key || entry[1] !== match);
      }
      this.#update();
    }

    get(name) {
      requireArguments(arguments.length, 1, "URLSearchParams.get");
      const key = usv(name);
      const entry = this.#list.find((item) => item[0] === key);
      return entry === undefined ? null : entry[1];
    }

    getAll(name) {
      requireArguments(arguments.length, 1, "URLSearchParams.getAll");
      const key = usv(name);
      return this.#list.filter((entry) => entry[0] === key).map((entry) => entry[1]);
    }

    has(name, value) {
      requireArguments(arguments.length, 1, "URLSearchParams.has");
      const key = usv(name);
      if (value === undefined) return this.#list.some((entry) => entry[0] === key);
      const match = usv(value);
      return this.#list.some((entry) => entry[0] === key && entry[1] === match);
    }

    // Replaces the first pair named `name` and removes the others, keeping
    // the position of the first.
    set(name, value) {
      requireArguments(arguments.length, 2, "URLSearchParams.set");
      const key = usv(name);
      const text = usv(value);
      const index = this.#list.findIndex((entry) => entry[0] === key);
      if (index === -1) {
        this.#list.push([key, text]);
      } else {
        this.#list[index] = [key, text];
        this.#list = this.#list.filter((entry, position) => position <= index || entry[0] !== key);
      }
      this.#update();
    }

    // Stable sort by name in UTF-16 code unit order, which is what `<`
    // compares on strings.
    sort() {
      this.#list.sort((a, b) => {
        if (a[0] < b[0]) return -1;
        if (a[0] > b[0]) return 1;
        return 0;
      });
      this.#update();
    }

    forEach(callback, thisArg = undefined) {
      if (typeof callback !== "function") {
        throw new TypeError("URLSearchParams.forEach: the callback is not a function");
      }
      for (let i = 0; i < this.#list.length; i++) {
        const [name, value] = this.#list[i];
        callback.call(thisArg, value, name, this);
      }
    }

    // The iterators read the list by position, so they see changes made
    // while iterating, as the standard's iterators do.
    *entries() {
      for (let i = 0; i < this.#list.length; i++) yield [this.#list[i][0], this.#list[i][1]];
    }

    *keys() {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i][0];
    }

    *values() {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i][1];
    }

    [Symbol.iterator]() {
      return this.entries();
    }

    toString() {
      return native.formSerialize(this.#list.flat());
    }

    get [Symbol.toStringTag]() {
      return "URLSearchParams";
    }
  }

  function parseQuery(query) {
    const flat = native.formParse(query);
    const list = [];
    for (let i = 0; i + 1 < flat.length; i += 2) list.push([flat[i], flat[i + 1]]);
    return list;
  }

  class URL {
    #parts;
    #params = null;

    constructor(url, base = undefined) {
      requireArguments(arguments.length, 1, "URL constructor");
      const input = usv(url);
      const baseText = base === undefined ? undefined : usv(base);
      const parts = native.urlParse(input, baseText);
      if (typeof parts === "string") throw invalidUrl(input, baseText, parts);
      this.#parts = parts;
    }

    static {
      writeQuery = (url, query) => {
        url.#parts = native.urlSet(url.#parts[HREF], "search", query);
      };
    }

    static canParse(url, base = undefined) {
      requireArguments(arguments.length, 1, "URL.canParse");
      const parts = native.urlParse(usv(url), base === undefined ? undefined : usv(base));
      return typeof parts !== "string";
    }

    static parse(url, base = undefined) {
      requireArguments(arguments.length, 1, "URL.parse");
      try {
        return new URL(url, base);
      } catch {
        return null;
      }
    }

    // Applies one of the standard's setters. Every setter but `href`
    // ignores a value it cannot apply, so only `href` can throw.
    #set(component, value) {
      const text = usv(value);
      const parts = native.urlSet(this.#parts[HREF], component, text);
      if (typeof parts === "string") throw invalidUrl(text, undefined, parts);
      const searchBefore = this.#parts[SEARCH];
      this.#parts = parts;
      if (this.#params !== null && parts[SEARCH] !== searchBefore) {
        replaceParams(this.#params, parts[SEARCH]);
      }
    }

    get href() {
      return this.#parts[HREF];
    }
    set href(value) {
      this.#set("href", value);
    }

    get origin() {
      return this.#parts[ORIGIN];
    }

    get protocol() {
      return this.#parts[PROTOCOL];
    }
    set protocol(value) {
      this.#set("protocol", value);
    }

    get username() {
      return this.#parts[USERNAME];
    }
    set username(value) {
      this.#set("username", value);
    }

    get password() {
      return this.#parts[PASSWORD];
    }
    set password(value) {
      this.#set("password", value);
    }

    get host() {
      return this.#parts[HOST];
    }
    set host(value) {
      this.#set("host", value);
    }

    get hostname() {
      return this.#parts[HOSTNAME];
    }
    set hostname(value) {
      this.#set("hostname", value);
    }

    get port() {
      return this.#parts[PORT];
    }
    set port(value) {
      this.#set("port", value);
    }

    get pathname() {
      return this.#parts[PATHNAME];
    }
    set pathname(value) {
      this.#set("pathname", value);
    }

    get search() {
      return this.#parts[SEARCH];
    }
    set search(value) {
      this.#set("search", value);
    }

    get hash() {
      return this.#parts[HASH];
    }
    set hash(value) {
      this.#set("hash", value);
    }

    // The same object on every read. Changes to it rewrite this URL's
    // query, and changes to `search` or `href` refill it.
    get searchParams() {
      if (this.#params === null) {
        this.#params = new URLSearchParams(this.#parts[SEARCH]);
        attachParams(this.#params, this);
      }
      return this.#params;
    }

    toString() {
      return this.#parts[HREF];
    }

    toJSON() {
      return this.#parts[HREF];
    }

    get [Symbol.toStringTag]() {
      return "URL";
    }
  }

  util.defineDisplay(URL, (url) => ({
    href: url.href,
    origin: url.origin,
    protocol: url.protocol,
    username: url.username,
    password: url.password,
    host: url.host,
    hostname: url.hostname,
    port: url.port,
    pathname: url.pathname,
    search: url.search,
    searchParams: url.searchParams,
    hash: url.hash,
  }));
  util.defineDisplay(URLSearchParams, (params) => Object.fromEntries(params));

  web.URL = URL;
  web.URLSearchParams = URLSearchParams;
})
