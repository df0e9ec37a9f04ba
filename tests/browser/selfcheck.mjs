// The harness checked without a frontend: Chromium starts from Debian's package, requests leaving 127.0.0.1
// are blocked, and a page on another origin reaches Quill through CORS (simple and preflighted requests).
// Environment: as browser.mjs, plus PAGE_URL (a page of the static server) and API_URL (Quill's origin).

import { check, eventually, launch, Session } from './browser.mjs'

const api = process.env.API_URL
const browser = await launch()
const session = new Session(browser)
const page = await session.open()

await session.run('page loads, outside requests blocked', async () => {
  await page.goto(process.env.PAGE_URL)
  await page.waitForLoadState('load')
  await eventually(async () => {
    check(session.blocked.some((url) => url.startsWith('http://quill-outside.invalid/')), 'the outside image was not blocked')
    check(session.blocked.some((url) => url.startsWith('ws://quill-outside.invalid/')), 'the outside socket was not blocked')
  }, 5000)
})

await session.run('CORS: GET /api/tags', async () => {
  const answer = await page.evaluate(async (base) => {
    const response = await fetch(`${base}/api/tags`)
    return { status: response.status, body: await response.json() }
  }, api)
  check(answer.status === 200 && Array.isArray(answer.body.tags), `got ${JSON.stringify(answer)}`)
})

await session.run('CORS: preflighted request, error readable', async () => {
  const answer = await page.evaluate(async (base) => {
    const response = await fetch(`${base}/api/user`, { headers: { Authorization: 'Token not-a-token' } })
    return { status: response.status, body: await response.json() }
  }, api)
  check(answer.status === 401 && answer.body.errors?.token, `got ${JSON.stringify(answer)}`)
}, [{ status: 401, path: /^\/api\/user$/ }])

await browser.close()
process.exitCode = session.write() ? 1 : 0
