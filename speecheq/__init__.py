"""SpeechEQ: multitask speech emotion recognition recipes on a unified label metric."""

__version__ = "0.1.0"
