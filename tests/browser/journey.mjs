// The RealWorld journey, written against what any RealWorld ("Conduit") frontend shows: the shared templates'
// classes (.navbar, .article-preview, .tag-list, .error-messages, .pagination ...) and the words on its links,
// buttons and placeholders, matched loosely. Navigation is by clicking, as a reader would; URLs are never typed
// except the first. Each step is its own assertion; a failed one leaves a screenshot and the journey goes on.
//
// Environment: as browser.mjs, plus FRONTEND_URL, API_URL (Quill's origin), AVATAR_URL, RUN (a unique suffix).

import { check, eventually, launch, Session } from './browser.mjs'

const FRONTEND = process.env.FRONTEND_URL
const API = process.env.API_URL
const RUN = process.env.RUN
const PASSWORD = 'correct horse battery'
const ann = { username: `ann${RUN}`, email: `ann${RUN}@example.com` }
const bob = { username: `bob${RUN}`, email: `bob${RUN}@example.com` }
const sam = { username: `sam${RUN}`, email: `sam${RUN}@example.com` }
const SEED_TAG = `seed${RUN}`
const RARE_TAG = `rare${RUN}`
const SEEDED = 21 // more than two pages at the common page sizes (10, 20)
const seedTitle = (i) => `Seeded ${RUN} ${String(i).padStart(2, '0')}`
const RARE = [5, 10, 15]
const FAVORITED_BY_SAM = 10
const article = {
  title: `Dragons of ${RUN}`,
  description: 'How to train them',
  body: 'First you **believe**.\n\n## Then you train\n\nEvery single day.',
  tags: ['dragons', 'training', `quill${RUN}`],
}
const editedBody = 'You **still** have to believe.\n\n## Edited part\n\nAnd rest on Sundays.'
const comments = [`First comment ${RUN}`, `Second comment ${RUN}`]
let slug = null

// --- the API, for seeding and for checking what the frontend did -----------------------------------------------

async function api(method, path, body, token) {
  const response = await fetch(`${API}/api${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Token ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : null }
}

async function seed() {
  const made = await api('POST', '/users', { user: { ...sam, password: PASSWORD } })
  if (made.status !== 201) throw new Error(`seeding: register -> ${made.status} ${JSON.stringify(made.body)}`)
  const token = made.body.user.token
  for (let i = 1; i <= SEEDED; i++) {
    const tagList = RARE.includes(i) ? [SEED_TAG, RARE_TAG] : [SEED_TAG]
    const body = { article: { title: seedTitle(i), description: `Seeded article ${i}`, body: `Seeded body ${i}.`, tagList } }
    const created = await api('POST', '/articles', body, token)
    if (created.status !== 201) throw new Error(`seeding: article ${i} -> ${created.status}`)
    if (i === FAVORITED_BY_SAM) await api('POST', `/articles/${created.body.article.slug}/favorite`, undefined, token)
  }
}

// --- what a RealWorld page shows ---------------------------------------------------------------------------------

const navbar = (page) => page.locator('nav, .navbar').first()
const navLink = (page, name) => navbar(page).getByRole('link', { name }).first()
const field = (page, placeholder) => page.getByPlaceholder(placeholder).first()
// A button by its accessible name or by its text (an aria-label such as "Follow" hides "Follow alice").
const button = (page, name) =>
  page.getByRole('button', { name }).or(page.locator('button, .btn, [role=button]').filter({ hasText: name })).first()
// The sidebar's "Popular Tags" (previews carry .tag-list too).
const popularTags = async (page) =>
  (await page.locator('.sidebar').count()) ? page.locator('.sidebar').first() : page.locator('.tag-list').last()
const previews = (page) => page.locator('.article-preview').filter({ has: page.locator('h1') })
const errorMessages = (page) => page.locator('.error-messages').first()

async function previewTitles(page) {
  return (await previews(page).locator('h1').allInnerTexts()).map((title) => title.trim())
}

async function visible(locator, what, ms = 10000) {
  await locator.waitFor({ state: 'visible', timeout: ms }).catch(() => {
    throw new Error(`not shown: ${what}`)
  })
}

async function gone(locator, what, ms = 10000) {
  await locator.waitFor({ state: 'hidden', timeout: ms }).catch(() => {
    throw new Error(`still shown: ${what}`)
  })
}

// Clicks like a person when the control is visible; an icon-only control (an empty <i> whose icon font is an
// outside request we block) has no size, so it gets the click event itself.
async function press(locator) {
  await locator.waitFor({ state: 'attached' })
  if (await locator.isVisible()) await locator.click()
  else await locator.dispatchEvent('click')
}

// Follows a navbar link. A navbar that lost its links (a frontend's own rendering bug) is what a person
// reloads the page for: so does the journey, once, and says so.
async function navClick(page, name) {
  const link = navLink(page, name)
  try {
    await link.waitFor({ state: 'visible', timeout: 3000 })
  } catch {
    console.log(`       note: the navbar link ${name} was missing; reloading the page`)
    await page.reload()
  }
  await link.click()
}

async function signedIn(page, user) {
  await visible(navLink(page, user.username), `the navbar link of ${user.username} (signed in)`)
}

async function signedOut(page) {
  await visible(navLink(page, /sign in|log ?in/i), 'the navbar\'s "Sign in" link (signed out)')
}

async function home(page) {
  await navClick(page, /^\s*home\s*$/i)
  await visible(page.getByText(/global feed/i).first(), 'the Global Feed tab')
}

async function globalFeed(page) {
  await home(page)
  await page.getByText(/global feed/i).first().click()
  await visible(previews(page).first(), 'an article preview in the global feed')
}

async function signUp(page, user, password = PASSWORD) {
  await navClick(page, /sign up|register/i)
  await field(page, /user ?name|your name/i).fill(user.username)
  await field(page, /e-?mail/i).fill(user.email)
  await field(page, /password/i).fill(password)
  await button(page, /sign up|register/i).click()
}

async function signIn(page, email, password = PASSWORD) {
  await navClick(page, /sign in|log ?in/i)
  await field(page, /e-?mail/i).fill(email)
  await field(page, /password/i).fill(password)
  await button(page, /sign in|log ?in/i).click()
}

async function signOut(page) {
  await navClick(page, /settings/i)
  const control = page.getByRole('button', { name: /log ?out|sign ?out/i })
    .or(page.getByRole('link', { name: /log ?out|sign ?out/i })).first()
  await control.click()
  await signedOut(page)
}

async function openArticle(page, title) {
  await previews(page).filter({ hasText: title }).first().locator('h1').click()
  await visible(page.locator('h1', { hasText: title }).first(), `the article page of "${title}"`)
}

// The editor's tags: the shared template puts a .tag-list of pills under the input (Enter adds one); a frontend
// without it takes the tags as one comma-separated text (where Enter would submit the form).
async function tagPills(page) {
  return (await page.locator('form .tag-list, .editor-page .tag-list').count()) > 0
}

async function enterTags(page, tags) {
  const input = field(page, /tag/i)
  if (!(await tagPills(page))) return input.fill(tags.join(', '))
  for (const tag of tags) {
    await input.fill(tag)
    await input.press('Enter')
    await visible(page.locator('.tag-list', { hasText: tag }).first(), `the tag ${tag} added in the editor`)
  }
}

function slugFrom(url) {
  const match = /article\/([^/?#]+)/.exec(url)
  return match ? decodeURIComponent(match[1]) : null
}

async function counterOf(locator) {
  const numbers = (await locator.innerText()).match(/\d+/g)
  return numbers ? Number(numbers[numbers.length - 1]) : 0
}

// --- the journey -------------------------------------------------------------------------------------------------

await seed()
const browser = await launch()
const session = new Session(browser)
const page = await session.open()
const step = (name, fn, intended) => session.run(name, fn, intended)

await step('home: global feed and tags', async () => {
  await page.goto(FRONTEND)
  await visible(page.getByText(/global feed/i).first(), 'the Global Feed tab')
  await visible(previews(page).filter({ hasText: seedTitle(SEEDED) }).first(), 'the newest seeded article')
  const sidebar = await popularTags(page)
  await visible(sidebar.getByText(SEED_TAG, { exact: true }).first(), `the tag ${SEED_TAG} among the popular tags`)
  await visible(sidebar.getByText(RARE_TAG, { exact: true }).first(), `the tag ${RARE_TAG} among the popular tags`)
})

await step('sign up', async () => {
  await signUp(page, ann)
  await signedIn(page, ann)
  const profile = await api('GET', `/profiles/${ann.username}`)
  check(profile.status === 200, `GET /api/profiles/${ann.username} -> ${profile.status}`)
})

await step('settings: bio and image', async () => {
  await navClick(page, /settings/i)
  await field(page, /bio/i).fill(`Bio of ${ann.username}`)
  await field(page, /picture|image|avatar/i).fill(process.env.AVATAR_URL)
  await button(page, /update settings|save/i).click()
  await eventually(async () => {
    const profile = (await api('GET', `/profiles/${ann.username}`)).body.profile
    check(profile.bio === `Bio of ${ann.username}` && profile.image === process.env.AVATAR_URL,
      `the profile was not updated: ${JSON.stringify(profile)}`)
  })
  await navClick(page, ann.username)
  await visible(page.getByText(`Bio of ${ann.username}`).first(), 'the bio on the profile page')
  await visible(page.locator(`img[src="${process.env.AVATAR_URL}"]`).first(), 'the new image on the profile page')
})

await step('log out, log in', async () => {
  await signOut(page)
  await signIn(page, ann.email)
  await signedIn(page, ann)
})

await step('new article, shown rendered', async () => {
  await navLink(page, /new (post|article)/i).click()
  await field(page, /title/i).fill(article.title)
  await field(page, /about/i).fill(article.description)
  await field(page, /markdown|body|write your article/i).fill(article.body)
  await enterTags(page, article.tags)
  await button(page, /publish|submit/i).click()
  await visible(page.locator('h1', { hasText: article.title }).first(), 'the article page with its title')
  slug = slugFrom(page.url())
  const content = page.locator('.article-content').first()
  await visible(content.locator('strong', { hasText: 'believe' }), 'the markdown rendered: **believe** as bold')
  await visible(content.locator('h2', { hasText: 'Then you train' }), 'the markdown rendered: ## as a heading')
  check(!(await content.innerText()).includes('**'), 'raw markdown shown in the article body')
  for (const tag of article.tags) await visible(page.getByText(tag, { exact: true }).first(), `the tag ${tag}`)
  const stored = await eventually(async () => {
    const found = await api('GET', `/articles?author=${ann.username}`)
    check(found.body.articlesCount === 1, `the API lists ${found.body.articlesCount} articles by ${ann.username}`)
    return found.body.articles[0]
  })
  check([...stored.tagList].sort().join() === [...article.tags].sort().join(), `stored tags: ${stored.tagList}`)
  slug = slug ?? stored.slug
})

await step('edit it and remove a tag', async () => {
  await page.getByRole('link', { name: /edit article/i }).or(button(page, /edit article/i)).first().click()
  const body = field(page, /markdown|body|write your article/i)
  await eventually(async () => check((await body.inputValue()).includes('believe'), 'the editor is not filled'))
  await body.fill(editedBody)
  const removed = article.tags[1]
  if (await tagPills(page)) {
    const pill = page.locator('.tag-list > *', { hasText: removed }).first()
    const remover = pill.locator('i, [role=button], button, [class*=close]').first()
    await press((await remover.count()) ? remover : pill)
    await gone(page.locator('.tag-list', { hasText: removed }), `the tag ${removed} in the editor`)
  } else {
    await enterTags(page, article.tags.filter((tag) => tag !== removed))
  }
  await button(page, /publish|update|submit/i).click()
  const content = page.locator('.article-content').first()
  await visible(content.locator('h2', { hasText: 'Edited part' }), 'the edited body, rendered')
  const stored = (await api('GET', `/articles/${slug}`)).body.article
  const expected = article.tags.filter((tag) => tag !== removed).sort()
  check(stored.tagList.join() === expected.join(), `stored tags after the edit: ${stored.tagList}`)
  await gone(page.locator('.tag-list').getByText(removed, { exact: true }), `the removed tag ${removed} on the page`)
})

await step('two comments, delete one', async () => {
  for (const text of comments) {
    await field(page, /comment/i).fill(text)
    await button(page, /post comment|comment/i).click()
    await visible(page.locator('.card', { hasText: text }).first(), `the comment "${text}"`)
  }
  const first = page.locator('.card', { hasText: comments[0] }).first()
  await press(first.locator('[aria-label*="delete" i], .ion-trash-a, [class*=trash], button:has-text("Delete")').first())
  await gone(page.locator('.card', { hasText: comments[0] }), 'the deleted comment')
  await visible(page.locator('.card', { hasText: comments[1] }).first(), 'the comment that was kept')
  const stored = (await api('GET', `/articles/${slug}/comments`)).body.comments
  check(stored.length === 1 && stored[0].body === comments[1], `stored comments: ${JSON.stringify(stored)}`)
})

await step('second user: favorite, follow, feed, unfavorite', async () => {
  await signOut(page)
  await signUp(page, bob)
  await signedIn(page, bob)
  await globalFeed(page)
  await openArticle(page, article.title)
  const favorite = button(page, /favou?rite/i)
  await favorite.click()
  await eventually(async () => check((await counterOf(button(page, /favou?rite/i))) === 1, 'the favorite count is not 1'))
  check((await api('GET', `/articles/${slug}`)).body.article.favoritesCount === 1, 'the API does not count the favorite')
  await button(page, new RegExp(`follow\\s+${ann.username}`, 'i')).click()
  await visible(button(page, /unfollow/i), `the "Unfollow ${ann.username}" button`)
  await home(page)
  await page.getByText(/your feed/i).first().click()
  const inFeed = previews(page).filter({ hasText: article.title }).first()
  await visible(inFeed, 'the followed author\'s article in Your Feed')
  const heart = inFeed.locator('button').first()
  check((await counterOf(heart)) === 1, 'the feed does not show the favorite count 1')
  await heart.click()
  await eventually(async () => check((await counterOf(heart)) === 0, 'the favorite count did not drop to 0'))
  await eventually(async () => {
    const count = (await api('GET', `/articles/${slug}`)).body.article.favoritesCount
    check(count === 0, `the API still counts ${count} favorite(s)`)
  })
})

await step('tag filter', async () => {
  await home(page)
  await (await popularTags(page)).getByText(RARE_TAG, { exact: true }).first().click()
  const wanted = RARE.map(seedTitle).sort()
  await eventually(async () => {
    const titles = (await previewTitles(page)).sort()
    check(titles.join() === wanted.join(), `tag ${RARE_TAG} lists ${JSON.stringify(titles)}`)
  })
  await visible(page.locator('.feed-toggle, .nav-pills').first().getByText(RARE_TAG).first(), 'the tag\'s tab')
})

await step('pagination over more than one page', async () => {
  await globalFeed(page)
  const pagination = page.locator('.pagination').first()
  await visible(pagination, 'the pagination')
  const pages = await pagination.locator('a, button, .page-link').count()
  check(pages >= 2, `the pagination has ${pages} page link(s)`)
  const firstPage = await previewTitles(page)
  await pagination.getByText('2', { exact: true }).first().click()
  await eventually(async () => {
    const secondPage = await previewTitles(page)
    check(secondPage.length > 0 && !secondPage.some((title) => firstPage.includes(title)),
      `page 2 shows ${JSON.stringify(secondPage)} after page 1 ${JSON.stringify(firstPage)}`)
  })
})

await step('profile tabs', async () => {
  await globalFeed(page)
  const seeded = previews(page).filter({ hasText: `Seeded ${RUN}` })
  await seeded.first().locator('a').filter({ hasText: new RegExp(`^\\s*${sam.username}\\s*$`) }).first().click()
  await visible(page.locator('.user-info, .profile-page').getByText(sam.username).first(), `the profile of ${sam.username}`)
  await visible(seeded.first(), 'the author\'s articles under My Articles')
  await page.getByText(/favou?rited (articles|posts)/i).first().click()
  await eventually(async () => {
    const titles = await previewTitles(page)
    check(titles.length === 1 && titles[0] === seedTitle(FAVORITED_BY_SAM), `Favorited Articles lists ${JSON.stringify(titles)}`)
  })
  await page.getByText(/my (articles|posts)/i).first().click()
  await visible(seeded.first(), 'My Articles again')
})

await step('delete the article', async () => {
  await signOut(page)
  await signIn(page, ann.email)
  await signedIn(page, ann)
  await globalFeed(page)
  await openArticle(page, article.title)
  await button(page, /delete article/i).click()
  await eventually(async () => {
    const found = await api('GET', `/articles/${slug}`)
    check(found.status === 404, `GET /api/articles/${slug} -> ${found.status} after the delete`)
  })
  await globalFeed(page)
  await gone(previews(page).filter({ hasText: article.title }), 'the deleted article in the global feed')
  await signOut(page)
})

const authPath = /^\/api\/users\/?$/

await step('error: taken email', async () => {
  await signUp(page, { username: `new${RUN}`, email: ann.email })
  await visible(errorMessages(page).getByText(/e-?mail/i).first(), 'an error message about the email')
}, [{ status: 409, path: authPath }, { status: 422, path: authPath }])

await step('error: taken username', async () => {
  await signUp(page, { username: ann.username, email: `new${RUN}@example.com` })
  await visible(errorMessages(page).getByText(/user ?name/i).first(), 'an error message about the username')
}, [{ status: 409, path: authPath }, { status: 422, path: authPath }])

await step('error: wrong password', async () => {
  await signIn(page, ann.email, 'not the password')
  await visible(errorMessages(page).locator('li, :scope').filter({ hasText: /\S/ }).first(), 'an error message')
  check(!(await navLink(page, ann.username).count()), 'signed in with a wrong password')
}, [{ status: 401, path: /^\/api\/users\/login\/?$/ }, { status: 422, path: /^\/api\/users\/login\/?$/ }])

await step('error: short password', async () => {
  const user = { username: `short${RUN}`, email: `short${RUN}@example.com` }
  await signUp(page, user, 'short')
  // Either the API's message, or the browser's own for a field the frontend marks minlength: both are shown.
  const fromApi = errorMessages(page).getByText(/password/i).first()
  const password = field(page, /password/i)
  await eventually(async () => {
    const native = await password.evaluate((input) => input.validationMessage)
    check(native || (await fromApi.isVisible()), 'no error message about the short password')
  })
  check((await api('GET', `/profiles/${user.username}`)).status === 404, 'an account was made with a short password')
}, [{ status: 422, path: authPath }])

await browser.close()
process.exitCode = session.write() ? 1 : 0
