// The parts of three.js that kinepose's HTML skeleton viewer (src/kinepose/viz/_viewer.html) uses, as one global.
// Named imports let esbuild drop the rest of three (tree shaking); add a name here when the viewer needs it.
import {
  Color,
  CylinderGeometry,
  DirectionalLight,
  GridHelper,
  HemisphereLight,
  Mesh,
  MeshLambertMaterial,
  PerspectiveCamera,
  Quaternion,
  REVISION,
  SRGBColorSpace,
  Scene,
  SphereGeometry,
  Vector3,
  WebGLRenderer,
} from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";

window.KPTHREE = {
  Color,
  CylinderGeometry,
  DirectionalLight,
  GridHelper,
  HemisphereLight,
  Mesh,
  MeshLambertMaterial,
  OrbitControls,
  PerspectiveCamera,
  Quaternion,
  REVISION,
  SRGBColorSpace,
  Scene,
  SphereGeometry,
  Vector3,
  WebGLRenderer,
};
