// Layout checks, evaluated in the page by tests/browser/test_screenshots.py: nothing wider than
// the window, header items that do not overlap, no broken images, and no content spilling out
// of a card, button or badge. Returns a list of problems; [] means all clear.
() => {
  const problems = [];
  const width = document.documentElement.clientWidth;
  const describe = (el) => {
    let out = el.tagName.toLowerCase();
    if (el.id) return out + "#" + el.id;
    if (typeof el.className === "string" && el.className.trim()) out += "." + el.className.trim().split(/\s+/).join(".");
    const words = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 30);
    return words ? out + " (“" + words + "”)" : out;
  };
  const shown = (el) => {
    const style = getComputedStyle(el);
    return style.display !== "none" && style.visibility !== "hidden" && el.getClientRects().length > 0
      && (!el.checkVisibility || el.checkVisibility());
  };
  const scrolls = (el) => {
    for (let node = el.parentElement; node; node = node.parentElement) {
      const overflow = getComputedStyle(node).overflowX;
      if (overflow === "auto" || overflow === "scroll" || overflow === "hidden") return true;
    }
    return false;
  };

  if (document.documentElement.scrollWidth > width + 1) {
    const wide = Array.from(document.querySelectorAll("body *"))
      .filter((el) => shown(el) && el.getBoundingClientRect().right > width + 1 && !scrolls(el))
      .slice(0, 5).map(describe);
    problems.push("the page is wider than the window (" + document.documentElement.scrollWidth +
      " > " + width + "px): " + wide.join(", "));
  }

  const parts = Array.from(document.querySelectorAll(
    ".site-bar > .brand, .primary-nav a, .account-area > *")).filter(shown);
  for (let i = 0; i < parts.length; i++) {
    for (let j = i + 1; j < parts.length; j++) {
      const a = parts[i].getBoundingClientRect(), b = parts[j].getBoundingClientRect();
      const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (x > 1 && y > 1) problems.push("header items overlap: " + describe(parts[i]) + " and " + describe(parts[j]));
    }
  }
  for (const part of parts) {
    const r = part.getBoundingClientRect();
    if (r.left < -1 || r.right > width + 1) problems.push("header item outside the window: " + describe(part));
  }

  for (const img of document.querySelectorAll("img")) {
    if (shown(img) && img.complete && img.naturalWidth === 0) problems.push("broken image: " + img.getAttribute("src"));
  }

  for (const el of document.querySelectorAll(".card, button, .button, .badge, .plan-badge, .flash")) {
    if (!shown(el) || scrolls(el) || getComputedStyle(el).overflowX !== "visible") continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      problems.push("content spills out of " + describe(el) + " (" + el.scrollWidth + " > " + el.clientWidth + "px)");
    }
  }
  // On a phone nothing is wider than the screen, not even inside a box that scrolls sideways
  // (a table to swipe through is a table nobody reads); code samples may scroll.
  const inCode = (el) => el.closest("pre, code") !== null;
  for (const el of document.querySelectorAll("body *")) {
    if (!shown(el) || inCode(el)) continue;
    const wide = el.getBoundingClientRect().width > width + 1;
    const overflow = getComputedStyle(el).overflowX;
    const hides = (overflow === "auto" || overflow === "scroll") && el.scrollWidth > el.clientWidth + 1;
    if (wide || hides) {
      problems.push("wider than the window: " + describe(el) + " (" + Math.round(Math.max(el.getBoundingClientRect().width, el.scrollWidth)) + " > " + width + "px)");
    }
  }
  return problems;
}
