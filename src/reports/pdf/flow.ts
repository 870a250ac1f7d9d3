/**
 * Layout primitives over pdfkit's text flow. pdfkit breaks pages inside a long paragraph by
 * itself, but not between blocks that must stay together (a heading and its first lines, a
 * table row, an image and its caption): callers ask for the room first and get a new page when
 * it is not there, so nothing is drawn over the footer or over another block.
 */

export const FONT = { regular: 'Body', bold: 'Bold' } as const;
export const SIZE = { body: 9.5, small: 8, heading: 11.5, title: 16 } as const;
export const COLOR = { text: '#111111', muted: '#555555', rule: '#999999', fill: '#eeeeee' } as const;

export class Flow {
  constructor(readonly doc: PDFKit.PDFDocument) {}

  get left(): number {
    return this.doc.page.margins.left;
  }

  get width(): number {
    return this.doc.page.width - this.doc.page.margins.left - this.doc.page.margins.right;
  }

  get bottom(): number {
    return this.doc.page.height - this.doc.page.margins.bottom;
  }

  /** Starts a new page unless `height` points fit below the cursor. */
  ensure(height: number): void {
    if (this.doc.y + height > this.bottom && this.doc.y > this.doc.page.margins.top) {
      this.doc.addPage();
    }
  }

  gap(points: number): void {
    this.doc.y += points;
  }

  textHeight(text: string, width: number, font: string = FONT.regular, size: number = SIZE.body): number {
    this.doc.font(font).fontSize(size);
    return this.doc.heightOfString(text, { width });
  }

  /** A section heading kept with what follows it: two lines, or `keepWith` points. */
  heading(text: string, keepWith = 24): void {
    const h = this.textHeight(text, this.width, FONT.bold, SIZE.heading);
    this.ensure(h + 14 + keepWith);
    this.gap(8);
    this.doc.font(FONT.bold).fontSize(SIZE.heading).fillColor(COLOR.text).text(text, this.left, this.doc.y, { width: this.width });
    const y = this.doc.y + 1;
    this.doc
      .moveTo(this.left, y)
      .lineTo(this.left + this.width, y)
      .lineWidth(0.5)
      .strokeColor(COLOR.rule)
      .stroke();
    this.doc.y = y + 4;
  }

  /** Free text at the left margin (or indented); pdfkit continues it on new pages as needed. */
  paragraph(text: string, opts: { indent?: number; font?: string; size?: number; color?: string } = {}): void {
    const indent = opts.indent ?? 0;
    this.doc
      .font(opts.font ?? FONT.regular)
      .fontSize(opts.size ?? SIZE.body)
      .fillColor(opts.color ?? COLOR.text)
      .text(text, this.left + indent, this.doc.y, { width: this.width - indent });
    this.doc.x = this.left;
  }
}

export interface Column {
  title: string;
  /** Share of the table width. */
  weight: number;
  align?: 'left' | 'right';
}

/** A table whose header row is repeated on each page it spans; rows never split. */
export function table(flow: Flow, columns: Column[], rows: string[][]): void {
  const { doc } = flow;
  const pad = 3;
  const total = columns.reduce((s, c) => s + c.weight, 0);
  const widths = columns.map((c) => (flow.width * c.weight) / total);
  const rowHeight = (cells: string[], font: string): number =>
    Math.max(...cells.map((cell, i) => flow.textHeight(cell, widths[i]! - 2 * pad, font, SIZE.body))) + 2 * pad;

  const drawRow = (cells: string[], font: string, shaded: boolean): void => {
    const h = rowHeight(cells, font);
    const y = doc.y;
    if (shaded) doc.rect(flow.left, y, flow.width, h).fillColor(COLOR.fill).fill();
    let x = flow.left;
    cells.forEach((cell, i) => {
      doc
        .font(font)
        .fontSize(SIZE.body)
        .fillColor(COLOR.text)
        .text(cell, x + pad, y + pad, { width: widths[i]! - 2 * pad, align: columns[i]!.align ?? 'left' });
      x += widths[i]!;
    });
    doc
      .moveTo(flow.left, y + h)
      .lineTo(flow.left + flow.width, y + h)
      .lineWidth(0.3)
      .strokeColor(COLOR.rule)
      .stroke();
    doc.x = flow.left;
    doc.y = y + h;
  };

  const header = columns.map((c) => c.title);
  const headerHeight = rowHeight(header, FONT.bold);
  flow.ensure(headerHeight + (rows[0] ? rowHeight(rows[0], FONT.regular) : 0));
  drawRow(header, FONT.bold, true);
  for (const row of rows) {
    const h = rowHeight(row, FONT.regular);
    if (doc.y + h > flow.bottom) {
      doc.addPage();
      drawRow(header, FONT.bold, true);
    }
    drawRow(row, FONT.regular, false);
  }
}
