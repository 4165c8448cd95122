// Defines the Fetch standard's `Headers`, `Request`, `Response` and
// `fetch`. Every request goes through the host's `moat:sandbox/http` import
// (native.httpFetch in src/http.rs), which checks it against the egress
// policy, follows redirects and returns the whole response.
//
// Bodies are byte arrays, not streams: `body` is absent, and `text()`,
// `json()`, `arrayBuffer()` and `bytes()` read the bytes the host returned.
//
// Evaluated on first use of a web global (see lazy.js) as a function
// expression, and called with the native functions, the formatter from
// inspect.js and the object that url.js and abort.js filled, which
// receives the classes.
(function (native, util, web) {
  "use strict";

  const { URL, URLSearchParams, AbortController } = web;

  // The `code` property of the TypeError that a host `http-error` becomes,
  // by error kind.
  const EGRESS_CODES = {
    denied: "EGRESS_DENIED",
    "invalid-request": "EGRESS_INVALID",
    "budget-exhausted": "EGRESS_BUDGET",
    "too-large": "EGRESS_TOO_LARGE",
    timeout: "EGRESS_TIMEOUT",
    "connection-failed": "EGRESS_CONNECTION",
  };
  const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
  const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
  // Methods that the Fetch standard upper-cases. Others, such as `patch`,
  // are sent as written, as browsers and Node do.
  const NORMALIZED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);
  const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const EMPTY = new Uint8Array(0);

  function text(value) {
    return `${value}`.toWellFormed();
  }

  // --- Headers -----------------------------------------------------------

  // Converts a value to a Web IDL ByteString, the type of header names and
  // values.
  function byteString(value, label) {
    const string = `${value}`;
    for (let i = 0; i < string.length; i++) {
      if (string.charCodeAt(i) > 0xff) {
        throw new TypeError(`${label} ${JSON.stringify(string)} contains the character ${JSON.stringify(string[i])} at index ${i}, which is outside the range U+0000 to U+00FF that HTTP headers allow`);
      }
    }
    return string;
  }

  function headerName(name) {
    const string = byteString(name, "Header name");
    if (!TOKEN.test(string)) throw new TypeError(`Invalid header name ${JSON.stringify(string)}: a name must be a non-empty HTTP token`);
    return string.toLowerCase();
  }

  // Strips leading and trailing HTTP whitespace, then rejects NUL, CR and
  // LF, which could split the header.
  function headerValue(value, name) {
    const string = byteString(value, `Value of header '${name}'`).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(string)) {
      throw new TypeError(`Invalid value for header '${name}': it contains NUL, CR or LF`);
    }
    return string;
  }

  let headerList;
  let freezeHeaders;

  class Headers {
    // Pairs of a lower-cased name and a value, in the order they were added.
    #list = [];
    #immutable = false;

    constructor(init = undefined) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        this.#list = init.#list.map(([name, value]) => [name, value]);
        return;
      }
      if (typeof init !== "object" && typeof init !== "function") {
        throw new TypeError("Headers: init must be an object, an array of [name, value] pairs or a Headers object");
      }
      const iterate = init[Symbol.iterator];
      if (iterate !== undefined && iterate !== null) {
        if (typeof iterate !== "function") throw new TypeError("Headers: the init object's Symbol.iterator is not a function");
        for (const pair of init) {
          const items = (typeof pair === "object" && pair !== null) ? Array.from(pair) : null;
          if (items === null || items.length !== 2) {
            throw new TypeError("Headers: each header in the init sequence must be a [name, value] pair");
          }
          this.append(items[0], items[1]);
        }
        return;
      }
      for (const key of Object.keys(init)) this.append(key, init[key]);
    }

    static {
      headerList = (headers) => headers.#list;
      freezeHeaders = (headers) => {
        headers.#immutable = true;
      };
    }

    #checkMutable() {
      if (this.#immutable) throw new TypeError("Headers are immutable: the headers of a fetched response cannot be changed");
    }

    append(name, value) {
      const key = headerName(name);
      const normalized = headerValue(value, key);
      this.#checkMutable();
      this.#list.push([key, normalized]);
    }

    delete(name) {
      const key = headerName(name);
      this.#checkMutable();
      this.#list = this.#list.filter((entry) => entry[0] !== key);
    }

    // Returns every value of the header joined with ", ", or null.
    get(name) {
      const key = headerName(name);
      const values = this.#list.filter((entry) => entry[0] === key).map((entry) => entry[1]);
      return values.length === 0 ? null : values.join(", ");
    }

    getSetCookie() {
      return this.#list.filter((entry) => entry[0] === "set-cookie").map((entry) => entry[1]);
    }

    has(name) {
      const key = headerName(name);
      return this.#list.some((entry) => entry[0] === key);
    }

    set(name, value) {
      const key = headerName(name);
      const normalized = headerValue(value, key);
      this.#checkMutable();
      const index = this.#list.findIndex((entry) => entry[0] === key);
      if (index === -1) {
        this.#list.push([key, normalized]);
        return;
      }
      this.#list[index] = [key, normalized];
      this.#list = this.#list.filter((entry, position) => position <= index || entry[0] !== key);
    }

    // The standard's "sort and combine": names in order, the values of a
    // repeated name joined with ", ", except `set-cookie`, whose values stay
    // separate because they may contain commas.
    #sorted() {
      const names = [...new Set(this.#list.map((entry) => entry[0]))].sort();
      const result = [];
      for (const name of names) {
        if (name === "set-cookie") {
          for (const value of this.getSetCookie()) result.push([name, value]);
        } else {
          result.push([name, this.get(name)]);
        }
      }
      return result;
    }

    forEach(callback, thisArg = undefined) {
      if (typeof callback !== "function") throw new TypeError("Headers.forEach: the callback is not a function");
      for (const [name, value] of this.#sorted()) callback.call(thisArg, value, name, this);
    }

    *entries() {
      yield* this.#sorted();
    }

    *keys() {
      for (const [name] of this.#sorted()) yield name;
    }

    *values() {
      for (const [, value] of this.#sorted()) yield value;
    }

    [Symbol.iterator]() {
      return this.entries();
    }

    get [Symbol.toStringTag]() {
      return "Headers";
    }
  }

  // --- bodies ------------------------------------------------------------

  // The body of each Request and Response: `{ bytes, used }`, where bytes
  // is a Uint8Array or null for no body.
  const bodies = new WeakMap();

  // Converts a BodyInit to bytes and the Content-Type it implies. Any
  // other object becomes its string form, as in browsers, so a plain
  // object is sent as "[object Object]": use JSON.stringify to send JSON.
  function extractBody(body) {
    if (body instanceof URLSearchParams) {
      return { bytes: native.utf8Encode(body.toString()), type: "application/x-www-form-urlencoded;charset=UTF-8" };
    }
    if (body instanceof ArrayBuffer) return { bytes: new Uint8Array(body.slice(0)), type: null };
    if (ArrayBuffer.isView(body)) {
      return { bytes: new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)), type: null };
    }
    return { bytes: native.utf8Encode(text(body)), type: "text/plain;charset=UTF-8" };
  }

  function bodyState(receiver, method) {
    const state = bodies.get(receiver);
    if (state === undefined) throw new TypeError(`${method} called on an object that is not a Request or Response`);
    return state;
  }

  // Reads the body once and converts it. A null body reads as empty and
  // does not count as used, as the Fetch standard specifies.
  function consume(receiver, method, convert) {
    try {
      const state = bodyState(receiver, method);
      if (state.used) {
        throw new TypeError(`${method}: the body has already been read; call clone() before the first read to read it twice`);
      }
      const bytes = state.bytes ?? EMPTY;
      if (state.bytes !== null) state.used = true;
      return Promise.resolve(convert(bytes));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  const bodyMethods = {
    get bodyUsed() {
      return bodyState(this, "bodyUsed").used;
    },
    text() {
      return consume(this, "text()", (bytes) => native.utf8Decode(bytes, false, false));
    },
    json() {
      return consume(this, "json()", (bytes) => JSON.parse(native.utf8Decode(bytes, false, false)));
    },
    arrayBuffer() {
      return consume(this, "arrayBuffer()", (bytes) => bytes.slice().buffer);
    },
    bytes() {
      return consume(this, "bytes()", (bytes) => bytes.slice());
    },
  };

  function installBodyMethods(target) {
    for (const name of Object.getOwnPropertyNames(bodyMethods)) {
      const descriptor = Object.getOwnPropertyDescriptor(bodyMethods, name);
      descriptor.enumerable = false;
      Object.defineProperty(target.prototype, name, descriptor);
    }
  }

  // Clones the body state of `source` for `clone()`. The bytes are shared,
  // because every read copies them.
  function cloneBody(source, method) {
    const state = bodyState(source, method);
    if (state.used) throw new TypeError(`${method}: the body has already been read, so it cannot be cloned`);
    return { bytes: state.bytes, used: false };
  }

  // --- Request -------------------------------------------------------------

  function normalizeMethod(method) {
    const string = byteString(method, "Method");
    if (!TOKEN.test(string)) throw new TypeError(`Invalid method ${JSON.stringify(string)}: a method must be an HTTP token`);
    const upper = string.toUpperCase();
    if (FORBIDDEN_METHODS.has(upper)) throw new TypeError(`The method ${upper} is not allowed`);
    return NORMALIZED_METHODS.has(upper) ? upper : string;
  }

  function parseRequestUrl(input) {
    const href = text(input);
    if (!URL.canParse(href)) {
      const reason = URL.canParse(href, "http://base.invalid/")
        ? "it is relative, and fetch() in the sandbox has no base URL to resolve it against; pass an absolute http: or https: URL"
        : "it is not a valid URL";
      const error = new TypeError(`Invalid URL '${href}': ${reason}`);
      error.code = "ERR_INVALID_URL";
      error.input = href;
      throw error;
    }
    const url = new URL(href);
    if (url.username !== "" || url.password !== "") {
      throw new TypeError(`Request URL '${href}' includes credentials; send them in an Authorization header instead`);
    }
    return url.href;
  }

  let requestSignal;

  class Request {
    #method;
    #url;
    #headers;
    #redirect;
    #signal;

    constructor(input, init = undefined) {
      if (arguments.length === 0) throw new TypeError("Request constructor requires 1 argument, but only 0 were given");
      const options = init ?? {};
      if (typeof options !== "object" && typeof options !== "function") {
        throw new TypeError("Request: init must be an object");
      }
      const source = input instanceof Request ? input : null;

      this.#url = source === null ? parseRequestUrl(input) : source.#url;
      this.#method = options.method !== undefined ? normalizeMethod(options.method) : (source?.#method ?? "GET");
      const redirect = options.redirect !== undefined ? `${options.redirect}` : (source?.#redirect ?? "follow");
      if (redirect !== "follow" && redirect !== "manual" && redirect !== "error") {
        throw new TypeError(`Request: redirect must be 'follow', 'manual' or 'error', not '${redirect}'`);
      }
      this.#redirect = redirect;
      this.#signal = options.signal ?? source?.#signal ?? null;
      this.#headers = new Headers(options.headers !== undefined ? options.headers : source?.#headers);

      let state = { bytes: null, used: false };
      const hasBody = options.body !== undefined && options.body !== null;
      const inherited = source !== null && !hasBody ? bodyState(source, "Request") : null;
      if (inherited !== null && inherited.used) {
        throw new TypeError("Request: the body of the source request has already been read");
      }
      if ((hasBody || (inherited !== null && inherited.bytes !== null)) &&
          (this.#method === "GET" || this.#method === "HEAD")) {
        throw new TypeError(`Request with the ${this.#method} method cannot have a body`);
      }
      if (hasBody) {
        const { bytes, type } = extractBody(options.body);
        state = { bytes, used: false };
        if (type !== null && !this.#headers.has("content-type")) this.#headers.append("content-type", type);
      } else if (inherited !== null && inherited.bytes !== null) {
        // The new request takes over the body, so the source counts as read.
        state = { bytes: inherited.bytes, used: false };
        inherited.used = true;
      }
      bodies.set(this, state);
    }

    static {
      requestSignal = (request) => request.#signal;
    }

    get method() {
      return this.#method;
    }

    get url() {
      return this.#url;
    }

    get headers() {
      return this.#headers;
    }

    get redirect() {
      return this.#redirect;
    }

    // A request made without a signal gets one that never aborts.
    get signal() {
      if (this.#signal === null) this.#signal = new AbortController().signal;
      return this.#signal;
    }

    clone() {
      const state = cloneBody(this, "Request.clone()");
      const copy = new Request(this.#url, {
        method: this.#method,
        headers: this.#headers,
        redirect: this.#redirect,
        signal: this.#signal,
      });
      bodies.set(copy, state);
      return copy;
    }

    get [Symbol.toStringTag]() {
      return "Request";
    }
  }
  installBodyMethods(Request);

  // --- Response ----------------------------------------------------------

  let createResponse;

  class Response {
    #status = 200;
    #statusText = "";
    #headers;
    #url = "";
    #redirected = false;
    #type = "default";

    constructor(body = null, init = undefined) {
      const options = init ?? {};
      if (typeof options !== "object" && typeof options !== "function") {
        throw new TypeError("Response: init must be an object");
      }
      const status = options.status === undefined ? 200 : Number(options.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response: status must be an integer from 200 to 599, not ${options.status}`);
      }
      const statusText = options.statusText === undefined ? "" : byteString(options.statusText, "Status text");
      if (/[\r\n]/.test(statusText)) throw new TypeError("Response: statusText must not contain CR or LF");
      this.#status = status;
      this.#statusText = statusText;
      this.#headers = new Headers(options.headers);

      let state = { bytes: null, used: false };
      if (body !== null && body !== undefined) {
        if (NULL_BODY_STATUSES.has(status)) throw new TypeError(`Response with status ${status} cannot have a body`);
        const { bytes, type } = extractBody(body);
        state = { bytes, used: false };
        if (type !== null && !this.#headers.has("content-type")) this.#headers.append("content-type", type);
      }
      bodies.set(this, state);
    }

    static {
      // Builds the Response for a host reply, which may carry any status
      // the constructor would reject, such as 101 or 304.
      createResponse = (reply, redirected, nullBody) => {
        const response = new Response();
        response.#status = reply.status;
        response.#statusText = reply.statusText;
        for (let i = 0; i + 1 < reply.headers.length; i += 2) {
          headerList(response.#headers).push([reply.headers[i].toLowerCase(), reply.headers[i + 1]]);
        }
        freezeHeaders(response.#headers);
        response.#url = reply.url;
        response.#redirected = redirected;
        response.#type = "basic";
        bodies.set(response, { bytes: nullBody ? null : reply.body, used: false });
        return response;
      };
    }

    static error() {
      const response = new Response();
      response.#status = 0;
      response.#type = "error";
      freezeHeaders(response.#headers);
      return response;
    }

    static json(data, init = undefined) {
      const body = JSON.stringify(data);
      if (body === undefined) throw new TypeError("Response.json: the data cannot be serialized as JSON");
      const response = new Response(null, init);
      if (NULL_BODY_STATUSES.has(response.#status)) {
        throw new TypeError(`Response with status ${response.#status} cannot have a body`);
      }
      bodies.set(response, { bytes: native.utf8Encode(body), used: false });
      if (!response.#headers.has("content-type")) response.#headers.append("content-type", "application/json");
      return response;
    }

    static redirect(url, status = 302) {
      const href = new URL(url).href;
      const code = Number(status);
      if (!REDIRECT_STATUSES.has(code)) throw new RangeError(`Response.redirect: status must be 301, 302, 303, 307 or 308, not ${status}`);
      const response = new Response(null, { status: code, headers: { location: href } });
      freezeHeaders(response.#headers);
      return response;
    }

    get type() {
      return this.#type;
    }

    get url() {
      return this.#url;
    }

    get redirected() {
      return this.#redirected;
    }

    get status() {
      return this.#status;
    }

    get ok() {
      return this.#status >= 200 && this.#status <= 299;
    }

    get statusText() {
      return this.#statusText;
    }

    get headers() {
      return this.#headers;
    }

    clone() {
      const state = cloneBody(this, "Response.clone()");
      const copy = new Response();
      copy.#status = this.#status;
      copy.#statusText = this.#statusText;
      copy.#headers = new Headers(this.#headers);
      if (this.#type !== "default") freezeHeaders(copy.#headers);
      copy.#url = this.#url;
      copy.#redirected = this.#redirected;
      copy.#type = this.#type;
      bodies.set(copy, state);
      return copy;
    }

    get [Symbol.toStringTag]() {
      return "Response";
    }
  }
  installBodyMethods(Response);

  // --- fetch -------------------------------------------------------------

  function egressError(failure) {
    const error = new TypeError(failure.message, { cause: { kind: failure.kind, message: failure.message } });
    error.code = EGRESS_CODES[failure.kind] ?? "EGRESS_FAILED";
    return error;
  }

  // The host call blocks, so the request has finished when fetch returns
  // its promise, and a signal aborted later has no effect on it.
  async function fetch(input, init = undefined) {
    if (arguments.length === 0) throw new TypeError("fetch requires 1 argument, but only 0 were given");
    const request = input instanceof Request && init === undefined ? input : new Request(input, init);
    const signal = requestSignal(request);
    if (signal !== null && signal.aborted) throw signal.reason;

    const url = new URL(request.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`fetch() supports only http: and https: URLs, not ${url.protocol} ('${request.url}')`);
    }
    // The fragment is never sent.
    url.hash = "";

    const state = bodyState(request, "fetch");
    if (state.used) throw new TypeError("fetch: the request body has already been read");
    if (state.bytes !== null) state.used = true;

    const headers = headerList(request.headers);
    const flat = [];
    for (const [name, value] of headers) flat.push(name, value);
    if (!headers.some((entry) => entry[0] === "accept")) flat.push("accept", "*/*");

    // With 'manual' and 'error' the host returns a redirect as it is. For
    // 'manual' that response reaches the code with its status and Location,
    // as in Node, where browsers would return an opaque response instead.
    const reply = native.httpFetch(request.method, url.href, flat, state.bytes, request.redirect === "follow");
    if (reply.kind !== undefined) throw egressError(reply);
    if (reply.url === "") reply.url = url.href;

    const isRedirect = REDIRECT_STATUSES.has(reply.status) &&
      reply.headers.some((item, index) => index % 2 === 0 && item.toLowerCase() === "location");
    if (request.redirect === "error" && isRedirect) {
      throw new TypeError(`fetch() received a ${reply.status} redirect from '${url.href}', and the request's redirect mode is 'error'`);
    }

    // Responses to HEAD and with statuses such as 204 have a null body,
    // which reads as empty without counting as used.
    const nullBody = request.method === "HEAD" || NULL_BODY_STATUSES.has(reply.status);
    return createResponse(reply, request.redirect === "follow" && reply.url !== url.href, nullBody);
  }

  util.defineDisplay(Headers, (headers) => Object.fromEntries(headers));
  util.defineDisplay(Request, (request) => ({
    method: request.method,
    url: request.url,
    headers: request.headers,
    redirect: request.redirect,
    bodyUsed: request.bodyUsed,
  }));
  util.defineDisplay(Response, (response) => ({
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    ok: response.ok,
    redirected: response.redirected,
    type: response.type,
    url: response.url,
    bodyUsed: response.bodyUsed,
  }));

  web.Headers = Headers;
  web.Request = Request;
  web.Response = Response;
  web.fetch = fetch;
})
