/**
 * The stylesheet of the pages for people (preference center, unsubscribe), served at
 * `/assets/pages.css` after `/assets/policy.css`, whose colours and layout it reuses. Text colours
 * keep the policy's contrast (at least 6.5:1) in light and dark mode; the button's text is the page
 * background on the link colour (7.6:1 light, 8.4:1 dark).
 */
export const PAGES_CSS = `/* Pledge pages for people: forms on top of policy.css. */
.choices {
  margin: 1.5rem 0;
  padding: 0;
  border: 0;
}

.choices legend {
  font-size: 1.5rem;
  font-weight: 700;
  line-height: 1.25;
  margin-bottom: 0.75rem;
}

.choice-list {
  list-style: none;
  padding: 0;
}

.choice {
  margin: 0 0 1rem;
  padding: 0.75rem 1rem;
  border: 1px solid var(--rule);
  border-radius: 0.375rem;
}

.switch {
  display: flex;
  gap: 0.75rem;
  align-items: flex-start;
}

.switch input {
  flex: none;
  width: 1.5rem;
  height: 1.5rem;
  margin: 0.125rem 0 0;
  accent-color: var(--link);
}

.switch label {
  font-weight: 600;
}

.choice p {
  margin: 0.25rem 0 0 2.25rem;
}

.fixed .choice p {
  margin-left: 0;
}

.state {
  color: var(--muted);
}

.everything {
  border-width: 2px;
}

.field {
  margin: 1rem 0;
}

.field label {
  display: block;
  font-weight: 600;
  margin-bottom: 0.25rem;
}

.field input {
  width: 100%;
  max-width: 28rem;
  padding: 0.5rem 0.625rem;
  font: inherit;
  color: var(--text);
  background: var(--background);
  border: 2px solid var(--muted);
  border-radius: 0.25rem;
}

.hint {
  color: var(--muted);
  margin: 0 0 0.5rem;
}

.button {
  display: inline-block;
  padding: 0.625rem 1.25rem;
  font: inherit;
  font-weight: 600;
  color: var(--background);
  background: var(--link);
  border: 2px solid var(--link);
  border-radius: 0.375rem;
  cursor: pointer;
}

.button:hover {
  text-decoration: underline;
}

.notice {
  margin: 1.5rem 0;
  padding: 0.75rem 1.25rem;
  background: var(--notice-background);
  border-left: 0.375rem solid var(--notice-border);
  border-radius: 0.25rem;
}

.notice p:last-child,
.notice ul:last-child {
  margin-bottom: 0;
}
.center-nav ul {
  display: flex;
  flex-wrap: wrap;
  gap: 0.5rem 1.5rem;
  list-style: none;
  padding: 0;
  margin: 0 0 1.5rem;
}

.center-nav a[aria-current='page'] {
  font-weight: 700;
  text-decoration: none;
}

.table-wrap {
  overflow-x: auto;
}

.disclosures {
  width: 100%;
  border-collapse: collapse;
}

.disclosures caption {
  text-align: left;
  font-weight: 600;
  margin-bottom: 0.5rem;
}

.disclosures th,
.disclosures td {
  padding: 0.5rem 0.75rem 0.5rem 0;
  border-bottom: 1px solid var(--rule);
  text-align: left;
  vertical-align: top;
}

.disclosures tbody th {
  font-weight: 600;
}

.disclosures .state {
  font-weight: 400;
}

.how-to-check code {
  overflow-wrap: anywhere;
}
`;
