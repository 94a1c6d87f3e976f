// Draws every <pre class="mermaid"> of the page with the mermaid.js the
// site serves itself (npm mermaid, copied by `make assets`; no CDN), in
// the theme's colour mode, and draws again when the reader switches
// between light and dark (pydata-sphinx-theme sets <html data-theme>).
import mermaid from "./mermaid.esm.min.mjs";

const root = document.documentElement;
const diagrams = [...document.querySelectorAll("pre.mermaid")];
// The text source, kept before mermaid replaces it with an SVG.
for (const d of diagrams) d.dataset.source = d.textContent;

const mode = () => (root.dataset.theme === "dark" ? "dark" : "light");
let drawn = null;
let queue = Promise.resolve();

function draw() {
  queue = queue.then(async () => {
    const want = mode();
    if (want === drawn) return;
    mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      // mermaid 12 lays out with ELK by default: a 1.6 MB chunk. dagre
      // (mermaid's classic layout) draws these flowcharts for ~0.1 MB.
      layout: "dagre",
      theme: want === "dark" ? "dark" : "default",
      // mermaid's dark edge labels (#ccc on #585858) miss WCAG's 4.5:1
      // contrast (axe-core); a darker label background passes.
      themeVariables: want === "dark" ? { edgeLabelBackground: "#2b2b2b" }
                                      : {},
    });
    for (const d of diagrams) {
      d.removeAttribute("data-processed");
      d.textContent = d.dataset.source;
    }
    await mermaid.run({ nodes: diagrams });
    drawn = want;
    for (const d of diagrams) d.dataset.drawnTheme = want;
  }).catch((err) => console.error("mermaid diagram failed:", err));
  return queue;
}

new MutationObserver(draw).observe(root, {
  attributes: true, attributeFilter: ["data-theme"],
});
draw();
