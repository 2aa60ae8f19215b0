import { describe, expect, test } from "vitest";
import { FilteredView, LogBuffer, visibleRange } from "./buffer";

const lines = (...texts: string[]) => texts.map((text) => ({ text, stderr: false, time: null }));

describe("LogBuffer", () => {
  test("keeps at most its capacity, dropping the oldest", () => {
    const buffer = new LogBuffer(3);
    buffer.push(lines("a", "b"));
    expect(buffer.length).toBe(2);
    buffer.push(lines("c", "d", "e"));
    expect(buffer.length).toBe(3);
    expect([0, 1, 2].map((i) => buffer.at(i).text)).toEqual(["c", "d", "e"]);
    expect(buffer.at(0).seq).toBe(2);
    expect(buffer.received).toBe(5);
    expect(buffer.dropped).toBe(2);
    expect(() => buffer.at(3)).toThrow(RangeError);
  });

  test("100,000 lines stay bounded", () => {
    const buffer = new LogBuffer(100_000);
    for (let batch = 0; batch < 15; batch++) {
      buffer.push(Array.from({ length: 10_000 }, (_, i) => ({ text: `line ${batch * 10_000 + i}`, stderr: false, time: null })));
    }
    expect(buffer.length).toBe(100_000);
    expect(buffer.at(0).text).toBe("line 50000");
    expect(buffer.at(99_999).text).toBe("line 149999");
  });
});

describe("FilteredView", () => {
  test("no filter shows every line", () => {
    const buffer = new LogBuffer(10);
    buffer.push(lines("one", "two"));
    const view = new FilteredView(buffer);
    expect(view.update("")).toBe(2);
    expect(view.line(1).text).toBe("two");
  });

  test("filters by substring, case-insensitively, and scans only appended lines", () => {
    const buffer = new LogBuffer(10);
    const view = new FilteredView(buffer);
    buffer.push(lines("GET /a", "POST /b", "get /c"));
    expect(view.update("get")).toBe(2);
    expect(view.line(1).text).toBe("get /c");
    buffer.push(lines("GET /d", "PUT /e"));
    expect(view.update("get")).toBe(3);
    expect(view.line(2).text).toBe("GET /d");
    expect(view.update("put")).toBe(1);
    expect(view.line(0).text).toBe("PUT /e");
  });

  test("follows lines dropped at the front", () => {
    const buffer = new LogBuffer(3);
    const view = new FilteredView(buffer);
    buffer.push(lines("x1", "y", "x2"));
    expect(view.update("x")).toBe(2);
    buffer.push(lines("x3", "y"));
    // kept: x2, x3, y
    expect(view.update("x")).toBe(2);
    expect(view.line(0).text).toBe("x2");
    expect(view.line(1).text).toBe("x3");
  });
});

describe("visibleRange", () => {
  test("renders only the visible rows and the overscan", () => {
    expect(visibleRange(0, 400, 20, 100_000, 10)).toEqual({ start: 0, end: 30 });
    expect(visibleRange(20_000, 400, 20, 100_000, 10)).toEqual({ start: 990, end: 1030 });
    expect(visibleRange(1_999_900, 400, 20, 100_000, 10)).toEqual({ start: 99_985, end: 100_000 });
    expect(visibleRange(0, 400, 20, 0, 10)).toEqual({ start: 0, end: 0 });
  });
});
