from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

# Load the script next to this file, so the Space works without a round-trip through the Hub.
module = evaluate.load(str(Path(__file__).resolve().parent))
launch_gradio_widget(module)
