// The mixed blog scenario of `quill bench` (functions/quill_tools/bench/load.py) for a cluster:
// many users, ~90% reads, some writes, 1 s think time.
//   k6 run -e BASE_URL=https://api.quill.example.com -e VUS=100 -e DURATION=10m infra/loadtest/mixed.js
import http from "k6/http";
import { check, sleep } from "k6";

const BASE = __ENV.BASE_URL || "http://127.0.0.1:8080";
const VUS = parseInt(__ENV.VUS || "100", 10);
const ACCOUNTS = Math.min(VUS, 50);

export const options = {
  scenarios: {
    mixed: { executor: "constant-vus", vus: VUS, duration: __ENV.DURATION || "5m" },
  },
  thresholds: {
    http_req_failed: ["rate==0"],
    "http_req_duration{kind:read}": ["p(95)<15", "p(99)<25"],
  },
};

const json = { headers: { "Content-Type": "application/json" } };
const auth = (token) => ({ headers: { "Content-Type": "application/json", Authorization: `Token ${token}` } });

export function setup() {
  const run = Date.now();
  const accounts = [];
  for (let n = 0; n < ACCOUNTS; n++) {
    const name = `k6-${run}-${n}`;
    const user = http.post(`${BASE}/api/users`, JSON.stringify({ user: { username: name, email: `${name}@example.com`, password: "password123" } }), json);
    const token = user.json("user.token");
    const article = http.post(`${BASE}/api/articles`, JSON.stringify({ article: { title: `${name} writes`, description: "seeded", body: "Lorem ipsum", tagList: [`topic${n % 5}`] } }), auth(token));
    accounts.push({ username: name, token, slug: article.json("article.slug") });
  }
  return { accounts };
}

const ACTIONS = [["list", 35], ["article", 25], ["profile", 10], ["feed", 10], ["tags", 5], ["tag_filter", 5], ["favorite", 4], ["comment", 3], ["create", 2], ["follow", 1]];
const TOTAL = ACTIONS.reduce((sum, [, weight]) => sum + weight, 0);

function pick() {
  let roll = Math.random() * TOTAL;
  for (const [name, weight] of ACTIONS) {
    if ((roll -= weight) < 0) return name;
  }
  return "list";
}

export default function ({ accounts }) {
  const me = accounts[(__VU - 1) % accounts.length];
  const other = accounts[Math.floor(Math.random() * accounts.length)];
  const action = pick();
  const read = { tags: { kind: "read" } };
  const write = { tags: { kind: "write" } };
  let response;
  switch (action) {
    case "list": response = http.get(`${BASE}/api/articles?limit=20`, read); break;
    case "article": response = http.get(`${BASE}/api/articles/${other.slug}`, Object.assign(auth(me.token), read)); break;
    case "profile": response = http.get(`${BASE}/api/profiles/${other.username}`, Object.assign(auth(me.token), read)); break;
    case "feed": response = http.get(`${BASE}/api/articles/feed`, Object.assign(auth(me.token), read)); break;
    case "tags": response = http.get(`${BASE}/api/tags`, read); break;
    case "tag_filter": response = http.get(`${BASE}/api/articles?tag=topic1&limit=20`, read); break;
    case "favorite": response = http.post(`${BASE}/api/articles/${other.slug}/favorite`, null, Object.assign(auth(me.token), write)); break;
    case "comment": response = http.post(`${BASE}/api/articles/${other.slug}/comments`, JSON.stringify({ comment: { body: "Nice post" } }), Object.assign(auth(me.token), write)); break;
    case "create": response = http.post(`${BASE}/api/articles`, JSON.stringify({ article: { title: `Fresh ${__VU}-${__ITER}-${Date.now()}`, description: "d", body: "b" } }), Object.assign(auth(me.token), write)); break;
    default:
      if (other.username === me.username) { response = http.get(`${BASE}/api/tags`, read); break; }
      response = http.post(`${BASE}/api/profiles/${other.username}/follow`, null, Object.assign(auth(me.token), write));
  }
  check(response, { "status < 400": (r) => r.status < 400 });
  sleep(0.5 + Math.random()); // 0.5-1.5 s, as quill bench mixed thinks
}
