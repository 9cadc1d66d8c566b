/**
 * The stylesheet of the HTML policy, served by the server at `/assets/policy.css`. Every text colour
 * has a contrast of at least 6.5:1 with its background (WCAG AA asks 4.5:1), in light and dark mode.
 */
export const POLICY_CSS = `/* Pledge privacy policy. Contrast of every text colour >= 6.5:1 (WCAG AA asks 4.5:1). */
:root {
  color-scheme: light dark;
  --text: #1b1b1f;
  --muted: #4a4d55;
  --background: #ffffff;
  --link: #0a4fbf;
  --focus: #0a4fbf;
  --notice-background: #fff6dc;
  --notice-border: #6f3e00;
  --rule: #c9ccd3;
  --footer-background: #f4f5f7;
}

@media (prefers-color-scheme: dark) {
  :root {
    --text: #e6e6ea;
    --muted: #b8bbc4;
    --background: #16171b;
    --link: #8cb4ff;
    --focus: #8cb4ff;
    --notice-background: #2b2618;
    --notice-border: #ffd27a;
    --rule: #4a4d55;
    --footer-background: #1f2026;
  }
}

*,
*::before,
*::after {
  box-sizing: border-box;
}

html {
  font-size: 100%;
  -webkit-text-size-adjust: 100%;
  text-size-adjust: 100%;
}

body {
  margin: 0;
  background: var(--background);
  color: var(--text);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 1.0625rem;
  line-height: 1.6;
}

.site-header,
main,
.site-footer > * {
  max-width: 44rem;
  margin-left: auto;
  margin-right: auto;
  padding-left: 1.25rem;
  padding-right: 1.25rem;
}

.site-header {
  padding-top: 1.25rem;
}

.site-name {
  margin: 0;
  font-weight: 600;
}

main {
  padding-bottom: 3rem;
}

main:focus {
  outline: none;
}

h1,
h2,
h3 {
  line-height: 1.25;
  margin: 2rem 0 0.75rem;
}

h1 {
  font-size: 2rem;
}

h2 {
  font-size: 1.5rem;
  padding-top: 1.25rem;
  border-top: 1px solid var(--rule);
}

h3 {
  font-size: 1.1875rem;
}

p,
ul,
address {
  margin: 0 0 1rem;
}

ul {
  padding-left: 1.5rem;
}

li {
  margin-bottom: 0.6rem;
}

address {
  font-style: normal;
}

a {
  color: var(--link);
  text-decoration: underline;
  text-underline-offset: 0.15em;
  overflow-wrap: anywhere;
}

a:hover {
  text-decoration-thickness: 2px;
}

:focus-visible {
  outline: 3px solid var(--focus);
  outline-offset: 2px;
  border-radius: 2px;
}

.last-updated,
.site-footer {
  color: var(--muted);
}

.policy-update {
  margin: 1.5rem 0;
  padding: 0.25rem 1.25rem;
  background: var(--notice-background);
  border-left: 0.375rem solid var(--notice-border);
  border-radius: 0.25rem;
}

.policy-update h2 {
  border-top: 0;
  margin-top: 0.75rem;
  padding-top: 0;
}

.skip-link {
  position: absolute;
  left: 1rem;
  top: -100rem;
  padding: 0.5rem 1rem;
  background: var(--background);
  color: var(--link);
  z-index: 1;
}

.skip-link:focus {
  top: 1rem;
}

.site-footer {
  padding: 1.5rem 0;
  background: var(--footer-background);
  border-top: 1px solid var(--rule);
  font-size: 0.9375rem;
}

.site-footer p {
  margin-bottom: 0.5rem;
}

/* The list of processors (/privacy/processors): a table that scrolls sideways on a narrow screen. */
.table-scroll {
  overflow-x: auto;
}

table.processors {
  width: 100%;
  border-collapse: collapse;
  font-size: 0.9375rem;
}

table.processors caption {
  text-align: left;
  font-weight: 600;
  padding-bottom: 0.5rem;
}

table.processors th,
table.processors td {
  text-align: left;
  vertical-align: top;
  padding: 0.5rem 0.75rem 0.5rem 0;
  border-bottom: 1px solid var(--rule);
}

table.processors th.sub-processor {
  padding-left: 1.25rem;
  font-weight: normal;
}

.row-note {
  color: var(--muted);
  font-weight: normal;
}

@media print {
  :root {
    --text: #000000;
    --muted: #000000;
    --background: #ffffff;
    --link: #000000;
    --notice-background: #ffffff;
    --notice-border: #000000;
    --footer-background: #ffffff;
  }

  body {
    font-size: 11pt;
  }

  .skip-link {
    display: none;
  }

  main {
    padding-bottom: 0;
  }

  h2,
  h3 {
    break-after: avoid;
  }

  li,
  .policy-update {
    break-inside: avoid;
  }

  main a[href^="http"]::after,
  main a[href^="mailto:"]::after {
    content: " <" attr(href) ">";
    font-size: 0.875em;
    overflow-wrap: anywhere;
  }
}
`;
