// The browser side shared by the journey and the self-check: Debian's Chromium driven by playwright-core,
// every request that does not go to 127.0.0.1 blocked, and each step's console errors and failed requests
// recorded, so that a step fails on any it did not intend.
//
// Environment: PLAYWRIGHT_CORE (the module's folder), CHROMIUM (the executable), SCREENSHOTS (a folder),
// RESULTS (a JSON file written at the end).

import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const require = createRequire(import.meta.url)
const { chromium } = require(process.env.PLAYWRIGHT_CORE)

export const isLocal = (url) => {
  try {
    const { protocol, hostname } = new URL(url)
    return protocol === 'data:' || protocol === 'blob:' || hostname === '127.0.0.1'
  } catch {
    return false
  }
}

export class AssertionError extends Error {}

export function check(condition, message) {
  if (!condition) throw new AssertionError(message)
}

// Polls `probe` until it returns without throwing (or returns a truthy value when `truthy`), up to `ms`.
export async function eventually(probe, ms = 10000, interval = 100) {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await probe()
    } catch (error) {
      if (Date.now() > deadline) throw error
    }
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

export async function launch() {
  // playwright-core gives Chromium a fresh temporary --user-data-dir of its own (it refuses one in args).
  return chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // A second fence behind the request routing below: no host name resolves, and 127.0.0.1 needs none.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  })
}

// A browser context whose every page is watched; `run(name, fn, intended)` runs one step.
export class Session {
  constructor(browser) {
    this.browser = browser
    this.results = []
    this.blocked = []
    this.current = null
    this.shots = process.env.SCREENSHOTS
    mkdirSync(this.shots, { recursive: true })
  }

  async open() {
    // No service workers: their requests would pass beside the routing below (and cache between steps).
    this.context = await this.browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: 'block' })
    await this.context.route('**/*', (route) => {
      const url = route.request().url()
      if (isLocal(url)) return route.continue()
      this.blocked.push(url)
      return route.abort('blockedbyclient')
    })
    await this.context.routeWebSocket(/.*/, (socket) => {
      if (isLocal(socket.url())) return socket.connectToServer()
      this.blocked.push(socket.url())
      return socket.close()
    })
    this.context.on('page', (page) => this.watch(page))
    this.context.setDefaultTimeout(10000)
    this.page = await this.context.newPage()
    return this.page
  }

  problem(text) {
    if (this.current) this.current.problems.push(text)
    else this.unattributed.push(text)
  }

  unattributed = []

  intended(status, url, method) {
    const intents = this.current ? this.current.intended : []
    return intents.some((i) => i.status === status && (!i.method || i.method === method) && (!i.path || i.path.test(new URL(url).pathname)))
  }

  watch(page) {
    page.on('console', (message) => {
      if (message.type() !== 'error') return
      const where = message.location()?.url || ''
      const text = message.text()
      if (where && !isLocal(where)) return // a resource we blocked
      if (/ERR_BLOCKED_BY_CLIENT|ERR_NAME_NOT_RESOLVED/.test(text)) return
      if (this.blocked.some((url) => text.includes(url))) return // a socket we closed, say
      const status = /status of (\d{3})/.exec(text)
      if (status && this.current?.intended.some((i) => i.status === Number(status[1]))) return
      this.problem(`console error: ${text}${where ? ` (${where})` : ''}`)
    })
    page.on('pageerror', (error) => this.problem(`uncaught exception: ${error.message}`))
    page.on('requestfailed', (request) => {
      const url = request.url()
      if (!isLocal(url)) return
      this.problem(`request failed: ${request.method()} ${url}: ${request.failure()?.errorText}`)
    })
    page.on('response', (response) => {
      const url = response.url()
      const status = response.status()
      if (status < 400 || !isLocal(url)) return
      const method = response.request().method()
      if (this.intended(status, url, method)) {
        this.current.seen.push(`${method} ${new URL(url).pathname} ${status}`)
        return
      }
      this.problem(`unintended response: ${method} ${url} -> ${status}`)
    })
  }

  // Runs one step: its own assertion, screenshot on failure, and its duration.
  async run(name, fn, intended = []) {
    const index = this.results.length + 1
    this.current = { name, intended, problems: [], seen: [] }
    const blockedBefore = this.blocked.length
    const started = performance.now()
    let error = null
    try {
      await fn(this.page)
      // Let whatever the step set off (a refetch after a redirect) land inside the step it belongs to.
      await this.page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {})
    } catch (caught) {
      error = caught
    }
    const seconds = (performance.now() - started) / 1000
    const problems = [...this.current.problems]
    if (error) problems.unshift(error instanceof AssertionError ? error.message : String(error.stack || error))
    const ok = problems.length === 0
    let screenshot = null
    if (!ok) {
      screenshot = path.join(this.shots, `${String(index).padStart(2, '0')}-${name}.png`)
      await this.page.screenshot({ path: screenshot, fullPage: true }).catch(() => { screenshot = null })
    }
    const blocked = this.blocked.length - blockedBefore
    this.results.push({ name, ok, seconds, problems, screenshot, blocked, url: this.page.url() })
    const line = `${ok ? 'ok  ' : 'FAIL'} ${String(index).padStart(2)} ${name.padEnd(34)} ${seconds.toFixed(2).padStart(6)} s`
    console.log(line + (blocked ? `  (${blocked} outside request(s) blocked)` : ''))
    for (const problem of problems) console.log(`       ${problem.split('\n').join('\n       ')}`)
    if (screenshot) console.log(`       screenshot: ${screenshot}`)
    this.current = null
    return ok
  }

  write() {
    const outside = [...new Set(this.blocked.map((url) => new URL(url).origin))]
    writeFileSync(
      process.env.RESULTS,
      JSON.stringify({ steps: this.results, blocked_origins: outside, unattributed: this.unattributed }, null, 2),
    )
    const failed = this.results.filter((r) => !r.ok).length
    console.log(`blocked requests to: ${outside.join(', ') || 'none'}`)
    console.log(`steps: ${this.results.length - failed} passed, ${failed} failed`)
    return failed
  }
}
