/**
 * A strict little XML reader for tests: elements, attributes, text and the five predefined
 * entities; it throws on anything not well-formed (unclosed or crossed tags, bad attribute
 * syntax, a bare `&` or `<` in text, a second root). Enough to check a generated document.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_][\w.:-]*/;
const ENTITY: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string, where: string): string {
  if (/[<]/.test(s)) throw new Error(`"<" in ${where}`);
  return s.replace(/&([a-z]+);|&/g, (m, e: string | undefined) => {
    if (!e || !(e in ENTITY)) throw new Error(`bad entity ${m} in ${where}`);
    return ENTITY[e]!;
  });
}

export function parseXml(xml: string): XmlElement {
  let i = 0;
  const src = xml.replace(/^\uFEFF/, '');
  if (src.startsWith('<?xml')) i = src.indexOf('?>') + 2;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = src.slice(i, lt < 0 ? src.length : lt);
    if (stack.length) stack.at(-1)!.text += decode(text, 'text');
    else if (text.trim()) throw new Error(`text outside the root: ${text.slice(0, 40)}`);
    if (lt < 0) break;
    const gt = src.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = src.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const open = stack.pop();
      if (!open || open.name !== tag.slice(1).trim()) throw new Error(`</${tag.slice(1)}> closes ${open?.name ?? 'nothing'}`);
      if (!stack.length) root = open;
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const name = NAME.exec(body)?.[0];
    if (!name) throw new Error(`bad tag <${tag}>`);
    const attrs: Record<string, string> = {};
    let rest = body.slice(name.length);
    while (rest.trim()) {
      const m = /^\s+([A-Za-z_][\w.:-]*)="([^"]*)"/.exec(rest);
      if (!m) throw new Error(`bad attribute syntax in <${tag}>`);
      if (m[1]! in attrs) throw new Error(`attribute ${m[1]} twice in <${name}>`);
      attrs[m[1]!] = decode(m[2]!, `attribute ${m[1]}`);
      rest = rest.slice(m[0].length);
    }
    const el: XmlElement = { name, attrs, children: [], text: '' };
    if (stack.length) stack.at(-1)!.children.push(el);
    else if (root) throw new Error('a second root element');
    if (selfClosing) {
      if (!stack.length) root = el;
    } else stack.push(el);
  }
  if (stack.length) throw new Error(`<${stack.at(-1)!.name}> not closed`);
  if (!root) throw new Error('no root element');
  return root;
}

/** The children named `name`. */
export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
