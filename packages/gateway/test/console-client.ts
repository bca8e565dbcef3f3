// A client of the operator console for tests: signs in with the form, keeps the session cookie,
// posts forms with or without it.

export const CONSOLE_TOKEN = 'console-token-for-tests-0123456789';

export interface ConsoleClient {
  get(path: string): Promise<Response>;
  post(path: string, form: Record<string, string>, opts?: { contentType?: string; cookie?: string | null }): Promise<Response>;
  signIn(token?: string): Promise<Response>;
  cookie: string | null;
  /** The anti-forgery value of the signed-in session, read off a page's form. */
  csrf(): Promise<string>;
}

export function consoleClient(baseUrl: string): ConsoleClient {
  const c: ConsoleClient = {
    cookie: null,
    get: (path) => fetch(`${baseUrl}${path}`, { redirect: 'manual', headers: c.cookie ? { cookie: c.cookie } : {} }),
    post: (path, form, opts = {}) => {
      const cookie = opts.cookie === undefined ? c.cookie : opts.cookie;
      return fetch(`${baseUrl}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': opts.contentType ?? 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
        body: new URLSearchParams(form).toString(),
      });
    },
    async signIn(token = CONSOLE_TOKEN) {
      const res = await c.post('/console/login', { token }, { cookie: null });
      const set = res.headers.get('set-cookie');
      if (res.status === 303 && set) c.cookie = set.split(';')[0]!;
      return res;
    },
    async csrf() {
      const html = await (await c.get('/console')).text();
      const m = /name="csrf" value="([^"]+)"/.exec(html);
      if (!m) throw new Error('no csrf value on the overview');
      return m[1]!;
    },
  };
  return c;
}

