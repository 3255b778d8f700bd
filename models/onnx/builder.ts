// A minimal, deterministic ONNX graph writer on top of onnx-proto (protobufjs).
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;
const ATTR_TENSOR = 4;
const ATTR_INTS = 7;

export const OPSET = 17;

type Dim = number | string;

/**
 * Collects initialisers and nodes, then serialises a single-input model (float32 and int64 outputs).
 * Field order is fixed, so the same graph always gives the same bytes.
 */
export class GraphBuilder {
  readonly #initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  readonly #nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  #counter = 0;

  /** Adds a float32 initialiser (stored as little-endian raw bytes). */
  floats(name: string, dims: number[], data: Float32Array): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length)
      throw new RangeError(`initialiser '${name}': ${data.length} values for dims ${dims}`);
    const raw = new Uint8Array(data.length * 4);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
    this.#initializers.push(onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: raw }));
    return name;
  }

  /** Adds an int64 initialiser (e.g. reduction axes; a 1-D tensor unless `dims` says otherwise). */
  int64s(name: string, values: number[], dims: number[] = [values.length]): string {
    if (dims.reduce((a, b) => a * b, 1) !== values.length)
      throw new RangeError(`initialiser '${name}': ${values.length} values for dims ${dims}`);
    this.#initializers.push(
      onnx.TensorProto.create({ name, dims, dataType: INT64, int64Data: values }),
    );
    return name;
  }

  /** Adds a scalar float32 constant. */
  scalar(name: string, value: number): string {
    return this.floats(name, [], Float32Array.of(value));
  }

  /**
   * Adds a `ConstantOfShape` node: a float32 tensor of `shape` (a tensor name) filled with `value`.
   * A plain fill (Expand of a scalar broadcasts it through the general copy path).
   */
  filled(shape: string, value: number): string {
    const raw = new Uint8Array(4);
    new DataView(raw.buffer).setFloat32(0, value, true);
    const tensor = onnx.TensorProto.create({ dims: [1], dataType: FLOAT, rawData: raw });
    const out = `constantofshape_${this.#counter++}`;
    const attribute = [onnx.AttributeProto.create({ name: "value", type: ATTR_TENSOR, t: tensor })];
    this.#nodes.push(
      onnx.NodeProto.create({
        opType: "ConstantOfShape",
        input: [shape],
        output: [out],
        name: out,
        attribute,
      }),
    );
    return out;
  }

  /** Adds a node and returns the name of its (single) output. */
  node(
    op: string,
    inputs: string[],
    attrs: Record<string, number | number[]> = {},
    output?: string,
  ): string {
    const out = output ?? `${op.toLowerCase()}_${this.#counter++}`;
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? onnx.AttributeProto.create({ name, type: ATTR_INTS, ints: v })
        : onnx.AttributeProto.create({ name, type: ATTR_INT, i: v }),
    );
    this.#nodes.push(
      onnx.NodeProto.create({ opType: op, input: inputs, output: [out], name: out, attribute }),
    );
    return out;
  }

  /** Serialises the model with one float input and its outputs (float32 unless `int64`). */
  build(opts: {
    graphName: string;
    input: string;
    inputDims: Dim[];
    outputs: { name: string; dims: Dim[]; int64?: boolean }[];
    docString?: string;
  }): Uint8Array {
    const valueInfo = (name: string, dims: Dim[], int64 = false) =>
      onnx.ValueInfoProto.create({
        name,
        type: onnx.TypeProto.create({
          tensorType: onnx.TypeProto.Tensor.create({
            elemType: int64 ? INT64 : FLOAT,
            shape: onnx.TensorShapeProto.create({
              dim: dims.map((d) =>
                onnx.TensorShapeProto.Dimension.create(
                  typeof d === "string" ? { dimParam: d } : { dimValue: d },
                ),
              ),
            }),
          }),
        }),
      });
    const graph = onnx.GraphProto.create({
      name: opts.graphName,
      node: this.#nodes,
      initializer: this.#initializers,
      input: [valueInfo(opts.input, opts.inputDims)],
      output: opts.outputs.map((o) => valueInfo(o.name, o.dims, o.int64)),
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: "anomaly-stream/models",
      producerVersion: "1",
      docString: opts.docString ?? "",
      graph,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: "", version: OPSET })],
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Reads every float32 initialiser of a model into a map (for the reference scorer). */
export function readInitializers(
  bytes: Uint8Array,
): Map<string, { dims: number[]; data: Float32Array }> {
  const model = onnx.ModelProto.decode(bytes);
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== FLOAT) continue;
    const dims = (t.dims ?? []).map((d) => Number(d));
    let data: Float32Array;
    if (t.rawData && t.rawData.length > 0) {
      const raw = t.rawData;
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      data = new Float32Array(raw.byteLength / 4);
      for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
    } else {
      data = Float32Array.from(t.floatData ?? []);
    }
    out.set(t.name ?? "", { dims, data });
  }
  return out;
}
