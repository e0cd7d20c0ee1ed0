// Basic accessibility checks, evaluated in the page by tests/browser/test_accessibility.py.
// Returns a list of problems, each a short sentence naming the element; [] means all clear.
// Checks: the page has a language and a title; every form control has a label; every image
// has alt text (an <svg role=img> a name); exactly one h1 and no skipped heading levels;
// every link and button has a name; ids are unique.
() => {
  const problems = [];
  const shown = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.display === "none" || style.visibility === "hidden" || node.hidden) return false;
      if (node.getAttribute("aria-hidden") === "true") return false;
    }
    // checkVisibility() also sees through closed <details> and content-visibility.
    return el.getClientRects().length > 0 && (!el.checkVisibility || el.checkVisibility());
  };
  const text = (el) => (el ? (el.innerText || el.textContent || "").replace(/\s+/g, " ").trim() : "");
  const describe = (el) => {
    let out = el.tagName.toLowerCase();
    if (el.id) out += "#" + el.id;
    else if (el.getAttribute("name")) out += "[name=" + el.getAttribute("name") + "]";
    else if (el.className && typeof el.className === "string") out += "." + el.className.trim().split(/\s+/).join(".");
    const words = text(el).slice(0, 40);
    return words ? out + " (“" + words + "”)" : out;
  };
  const labelledBy = (el) => (el.getAttribute("aria-labelledby") || "").split(/\s+/)
    .map((id) => text(document.getElementById(id))).join(" ").trim();
  const imageNames = (el) => Array.from(el.querySelectorAll("img[alt], svg[aria-label]"))
    .map((img) => img.getAttribute("alt") || img.getAttribute("aria-label")).join(" ").trim();
  const accessibleName = (el) => (el.getAttribute("aria-label") || "").trim() || labelledBy(el) ||
    Array.from(el.labels || []).map(text).join(" ").trim() || (el.getAttribute("title") || "").trim();

  if (!document.documentElement.lang) problems.push("<html> has no lang attribute");
  if (!document.title.trim()) problems.push("the page has no <title>");

  const skipTypes = ["hidden", "submit", "button", "reset", "image"];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    // Controls folded away in a closed <details> still need their labels.
    if (skipTypes.includes(el.type) || (!shown(el) && !el.closest("details"))) continue;
    if (!accessibleName(el)) problems.push("form control without a label: " + describe(el));
  }

  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("image without alt text: " + (img.getAttribute("src") || "").slice(0, 80));
  }
  for (const svg of document.querySelectorAll("svg[role=img]")) {
    if (!(svg.getAttribute("aria-label") || labelledBy(svg) || text(svg.querySelector("title")))) {
      problems.push("svg image without a name: " + describe(svg));
    }
  }

  const headings = Array.from(document.querySelectorAll("h1, h2, h3, h4, h5, h6")).filter(shown);
  const h1s = headings.filter((h) => h.tagName === "H1");
  if (h1s.length !== 1) problems.push("expected exactly one h1, found " + h1s.length + ": " + h1s.map(text).join(" | "));
  if (headings.length && headings[0].tagName !== "H1") problems.push("the first heading is " + describe(headings[0]) + ", not the h1");
  let previous = 0;
  for (const heading of headings) {
    const level = Number(heading.tagName[1]);
    if (previous && level > previous + 1) {
      problems.push("heading level skipped: h" + previous + " then " + describe(heading));
    }
    previous = level;
  }

  for (const el of document.querySelectorAll("a[href], button, summary, [role=button]")) {
    if (!shown(el)) continue;
    if (!(text(el) || accessibleName(el) || imageNames(el))) problems.push("link or button without a name: " + describe(el));
  }

  const seen = new Map();
  // Hidden inputs are skipped: every WTForms form renders its token as input#csrf_token.
  for (const el of document.querySelectorAll("[id]:not(input[type=hidden])")) seen.set(el.id, (seen.get(el.id) || 0) + 1);
  for (const [id, count] of seen) if (count > 1) problems.push("id used " + count + " times: #" + id);

  return problems;
}
