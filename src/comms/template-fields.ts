/**
 * Purpose limitation for templates: a campaign's templates may name only the fields its list (a
 * marketing purpose) may use. The use gate would return nothing else anyway, so a template that
 * names `{{phone}}` for a list that may not use phone numbers, or a typo such as `{{frist_name}}`,
 * would print an empty gap in every message. It is refused when the campaign is created instead,
 * with the fields the list may use.
 */
import type Handlebars from 'handlebars';
import type { Manifest, Purpose } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import { ValidationError } from '../platform/errors.js';

type Node = Record<string, unknown> & { type?: string };

/** The helpers that change the context inside their block: names in it are not the person's fields. */
const CONTEXT_HELPERS = new Set(['each', 'with']);

/**
 * The fields a template names in the person's context: `{{first_name}}`, `{{#if organization}}`,
 * the head of `{{a.b}}`. Not `this`, `@data` names, helpers, or names inside `#each`/`#with`.
 */
export function templateFieldNames(handlebars: typeof Handlebars, source: string): Set<string> {
  const names = new Set<string>();
  const path = (node: unknown) => {
    const p = node as Node;
    if (p.type !== 'PathExpression' || p.data === true || p.depth !== 0) return;
    const head = (p.parts as string[] | undefined)?.[0];
    if (head !== undefined && head !== 'this') names.add(head);
  };
  const expression = (node: unknown) => {
    const n = node as Node;
    if (n.type === 'PathExpression') path(n);
    else if (n.type === 'SubExpression') call(n);
  };
  const call = (n: Node) => {
    for (const param of (n.params as unknown[] | undefined) ?? []) expression(param);
    for (const pair of ((n.hash as Node | undefined)?.pairs as Node[] | undefined) ?? [])
      expression(pair.value);
  };
  const statements = (body: unknown) => {
    for (const statement of ((body as Node | undefined)?.body as Node[] | undefined) ?? []) {
      switch (statement.type) {
        case 'MustacheStatement': {
          const hasArgs = (statement.params as unknown[]).length > 0 || statement.hash !== undefined;
          // `{{name}}` is a field; `{{helper arg}}` calls a (built-in) helper with fields as arguments.
          if (hasArgs) call(statement);
          else path(statement.path);
          break;
        }
        case 'BlockStatement': {
          call(statement);
          const helper = ((statement.path as Node).parts as string[] | undefined)?.[0] ?? '';
          if (!CONTEXT_HELPERS.has(helper)) statements(statement.program);
          statements(statement.inverse);
          break;
        }
        default:
          break;
      }
    }
  };
  statements(handlebars.parse(source));
  return names;
}

/** The fields `purpose` may use, by name, with their categories: those of the sources that collect for it. */
export function usableFields(manifest: Manifest, purpose: Purpose): Map<string, string> {
  const fields = new Map<string, string>();
  for (const source of manifest.sources) {
    if (!source.purposes.includes(purpose.key)) continue;
    for (const [name, field] of Object.entries(source.fields ?? {})) {
      if (purpose.categories.some((c) => coversCategory(c, field.category))) fields.set(name, field.category);
    }
  }
  return fields;
}

/** Every field any source declares, by name, with its category (the first source's, for the message). */
function declaredFields(manifest: Manifest): Map<string, string> {
  const fields = new Map<string, string>();
  for (const source of manifest.sources) {
    for (const [name, field] of Object.entries(source.fields ?? {})) {
      if (!fields.has(name)) fields.set(name, field.category);
    }
  }
  return fields;
}

/**
 * Throws `comms.template_field_unusable` (422) for the first field a template names that `purpose`
 * may not use: one a source declares under a category the purpose does not cover, or one no source
 * declares (a typo). The message lists the fields the purpose may use.
 */
export function assertTemplateFieldsUsable(
  handlebars: typeof Handlebars,
  templates: Record<'subject' | 'text' | 'html', string>,
  manifest: Manifest,
  purpose: Purpose,
): void {
  const usable = usableFields(manifest, purpose);
  const declared = declaredFields(manifest);
  const allowed = [...usable.keys()].sort();
  for (const part of ['subject', 'text', 'html'] as const) {
    for (const name of templateFieldNames(handlebars, templates[part])) {
      if (usable.has(name)) continue;
      const category = declared.get(name);
      const why =
        category === undefined
          ? `no collection point declares a field "${name}"`
          : `"${purpose.key}" may not use it (it is ${category}, and the purpose covers ${purpose.categories.join(', ')})`;
      throw new ValidationError(
        'comms.template_field_unusable',
        `the ${part} template uses {{${name}}}, but ${why}; fields this list may use: ${allowed.join(', ') || '(none)'}`,
        { path: `template.${part}`, field: name, list: purpose.key, usable: allowed },
        422,
      );
    }
  }
}
