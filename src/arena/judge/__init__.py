"""LLM-as-a-judge: MT-Bench and Arena-Hard style automatic evaluation."""
